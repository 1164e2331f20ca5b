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
                (``ss`` every 50 ms, asynchronously: the loop never waits)
  status_calls  status calls per server (counted by kind, apart from launches,
                kills and the check at start); status_calls_per_cycle: the
                most per server per poll cycle (1 = batched)

    bash scripts/services/sshd.sh start && python bench/ssh.py --jobs 40
"""

from __future__ import annotations

import os
import sys

# bench/queue.py is named like the stdlib's ``queue`` (which thread pools
# import): keep this folder off the import path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse
import asyncio
import contextlib
import json
import statistics
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


async def established() -> int:
    """Established connections to the two ports now (``ss`` as an asyncio
    subprocess: the event loop, and the scheduler measured, never wait for it;
    not asyncio.to_thread: bench/queue.py would shadow the stdlib's queue)."""
    proc = await asyncio.create_subprocess_exec(
        *["ss", "-Htn", "state", "established", "( dport = :2222 or dport = :2223 )"],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    return len(out.splitlines())


async def peak_established(stop: asyncio.Event, every_s: float = 0.05) -> int:
    """Most established connections seen until ``stop``, sampled every 50 ms."""
    peak = 0
    while not stop.is_set():
        peak = max(peak, await established())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
    return peak


async def measure(master: bool, jobs: int, sleep_s: float, sessions: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        xqute = Xqute(
            SshScheduler if master else NoMaster,
            workdir=tmp,
            forks=jobs,
            scheduler_opts={"servers": servers(sessions), "poll_interval_s": 0.5},
        )
        sched = xqute.scheduler
        durations: list[float] = []  # of launch and status calls
        for client in sched.clients.values():
            run = client.run

            async def timed(cmd, _run=run, **kw):
                t0 = time.monotonic()
                try:
                    return await _run(cmd, **kw)
                finally:
                    if kw["kind"] in ("launch", "status"):
                        durations.append(time.monotonic() - t0)

            client.run = timed
        await xqute.run_until_complete(keep_feeding=True)  # starts: checks servers
        before = accepted()
        stop = asyncio.Event()
        sampler = asyncio.create_task(peak_established(stop))
        t0 = time.monotonic()
        for _ in range(jobs):
            await xqute.feed(f"sleep {sleep_s}")
        while not all(j.jid for j in xqute.jobs):
            await asyncio.sleep(0.01)
        submit_s = time.monotonic() - t0
        await xqute.stop_feeding()
        stop.set()
        peak = await sampler
        after = accepted()
        cycles = sched._poller._counter
        # calls by what they were (the check at start, launches, status, kills)
        launches = {n: c.calls["launch"] for n, c in sched.clients.items()}
        status = {n: c.calls["status"] for n, c in sched.clients.items()}
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
