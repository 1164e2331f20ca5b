#!/usr/bin/env python3
"""Measure the ssh backend against the loopback test servers (scripts/services/sshd.sh).

For N jobs (`sleep S`) at forks=N over h1 and h2, with the master connection
(ControlMaster, the default) and without it (each call its own connection):

  submit_ms     wall time from the first submission until every job has its jid,
                per job (submissions that come together go out in one call per
                server)
  launch_calls  ssh calls that launched the N jobs, per server
  call_ms       median duration of one ssh call (launch or status)
  connections   TCP connections sshd accepted during the run (its log), per server
  peak_tcp      most established connections to the two ports seen at once
  status_calls  status calls per server per poll cycle (1 = batched)

    bash scripts/services/sshd.sh start && python bench/ssh.py --jobs 40
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from xqute import Xqute
from xqute.schedulers.ssh import SshScheduler

STATE = Path("/tmp/xqute-sshd")
PORTS = {"h1": ("127.0.0.1", 2222), "h2": ("127.0.0.2", 2223)}


def servers(max_sessions: int) -> dict:
    args = ["-F", "/dev/null", "-o", f"UserKnownHostsFile={STATE}/known_hosts"]
    return {
        name: {
            "host": host,
            "port": port,
            "user": "root",
            "keyfile": str(STATE / "id_ed25519"),
            "max_sessions": max_sessions,
            "args": args,
        }
        for name, (host, port) in PORTS.items()
    }


class NoMaster(SshScheduler):
    """Every call opens its own connection (ControlMaster off)."""

    async def start(self) -> None:
        await super().start()
        for client in self.clients.values():
            await client.close()
            client.ctrl_path = None


def accepted() -> dict[str, int]:
    out = {}
    for name in PORTS:
        log = STATE / f"sshd-{name}.log"
        out[name] = log.read_text().count("Accepted publickey")
    return out


def established() -> int:
    text = subprocess.run(
        ["ss", "-Htn", "state", "established", "( dport = :2222 or dport = :2223 )"],
        capture_output=True,
        text=True,
    ).stdout
    return len(text.splitlines())


async def measure(master: bool, jobs: int, sleep_s: float, sessions: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        xqute = Xqute(
            SshScheduler if master else NoMaster,
            workdir=tmp,
            forks=jobs,
            scheduler_opts={"servers": servers(sessions), "poll_interval_s": 0.5},
        )
        sched = xqute.scheduler
        durations: list[float] = []
        for client in sched.clients.values():
            run = client.run

            async def timed(cmd, _run=run, **kw):
                t0 = time.monotonic()
                try:
                    return await _run(cmd, **kw)
                finally:
                    durations.append(time.monotonic() - t0)

            client.run = timed
        await xqute.run_until_complete(keep_feeding=True)  # starts: checks servers
        before = accepted()
        t0 = time.monotonic()
        for _ in range(jobs):
            await xqute.feed(f"sleep {sleep_s}")
        peak = 0
        while not all(j.jid for j in xqute.jobs):
            peak = max(peak, established())
            await asyncio.sleep(0.01)
        submit_s = time.monotonic() - t0
        stopping = asyncio.ensure_future(xqute.stop_feeding())
        while not stopping.done():
            peak = max(peak, established())
            await asyncio.sleep(0.05)
        await stopping
        after = accepted()
        cycles = sched._poller._counter
        launches = {n: sched.launchers[n].calls for n in PORTS}
        status = {n: c.calls - 1 - launches[n] for n, c in sched.clients.items()}
        return {
            "master": master,
            "jobs": jobs,
            "ok": sum(j.rc == 0 for j in xqute.jobs),
            "submit_ms": round(submit_s / jobs * 1000, 1),
            "launch_calls": launches,
            "call_ms": round(statistics.median(durations) * 1000, 1),
            "connections": {n: after[n] - before[n] for n in PORTS},
            "peak_tcp": peak,
            "poll_cycles": cycles,
            "status_calls": status,
            "status_calls_per_cycle": round(max(status.values()) / max(cycles, 1), 2),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--sleep", type=float, default=3.0)
    parser.add_argument("--max-sessions", type=int, default=10)
    args = parser.parse_args()
    for master in (True, False):
        result = asyncio.run(measure(master, args.jobs, args.sleep, args.max_sessions))
        print(json.dumps(result))


if __name__ == "__main__":
    main()
