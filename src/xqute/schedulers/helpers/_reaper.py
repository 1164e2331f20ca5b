"""Kills a driver's local jobs when the driver dies, even by SIGKILL.

Run as ``python -I -S _reaper.py GRACE_S`` in a session of its own, with the read
end of a pipe as stdin. The driver writes ``+PGID`` when it starts a job (each
job leads its own process group) and ``-PGID`` when the job has ended. When the
pipe reaches EOF, because the driver closed it or because the kernel closed it
when the driver died, every group still listed gets SIGTERM, then SIGKILL after
GRACE_S seconds. Standard library only: it must start fast and import nothing
from xqute.
"""

import contextlib
import os
import signal
import sys
import time

# Sleeping between reads lets registrations pile up in the pipe: a driver's write
# then does not wake this process each time (that cost the driver ~85 us per job).
# Noticing the driver's death waits at most this long.
BATCH_S = 0.2


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _signal_all(groups: set[int], sig: int) -> None:
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def main() -> None:
    grace_s = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    groups: set[int] = set()
    pending = b""
    while True:
        try:
            data = os.read(0, 65536)
        except InterruptedError:  # pragma: no cover
            continue
        if not data:
            break
        time.sleep(BATCH_S)
        pending += data
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if len(line) < 2:
                continue
            try:
                pgid = int(line[1:])
            except ValueError:
                continue
            if line[:1] == b"+":
                groups.add(pgid)
            else:
                groups.discard(pgid)
    groups = {g for g in groups if _alive(g)}
    if not groups:
        return
    _signal_all(groups, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while groups and time.monotonic() < deadline:
        time.sleep(0.1)
        groups = {g for g in groups if _alive(g)}
    _signal_all(groups, signal.SIGKILL)


if __name__ == "__main__":
    main()
