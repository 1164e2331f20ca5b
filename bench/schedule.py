#!/usr/bin/env python3
"""Benchmark schedule firing in the real queue daemon.

--schedules jobs (default 100), each ``Every("1s")`` running ``true``, are
defined in a fresh db; a daemon serves it for --seconds (default 60). Then,
from the db:

  lateness      fired_at - scheduled_for of every started fire, fired_at being
                when its run was created in the fire transaction: median
                (<= 50 ms) and p99 (<= 250 ms)
  missed        scheduled times in the window with no run (0): every second
                of the window, for every schedule, must have started one
  doubled       scheduled times with more than one run (0)
  job started   (context) scheduled time -> the run's queue job started by the
                daemon's pool: the lateness plus the dispatch

Baseline, measured in the same run under the same load: a bare asyncio timer
in this process that sleeps until each whole second and records how late it
woke (what any single-process timer gets on this machine right now). The
figures are printed with the ratio to it. With --cron, Debian cron (the
``cron`` package, run as root) runs ``date +%s.%N`` at ``* * * * *`` for
--cron-minutes:
its lateness is printed beside xqute's own ``Cron("* * * * *")`` running the
same command in the same minutes (Debian cron cannot fire more often than once
a minute).

    python bench/schedule.py                     # ~80 s
    python bench/schedule.py --schedules 20 --seconds 20
    python bench/schedule.py --cron --cron-minutes 3
    XQBENCH_DIR=/dev/shm python bench/schedule.py   # job folders on tmpfs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TARGETS = {"lateness_median_ms": 50.0, "lateness_p99_ms": 250.0}
BENCH_DIR = os.environ.get("XQBENCH_DIR")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def bare_timer(seconds: float, out: list[float]) -> None:
    """The baseline: wake at each whole second for ``seconds``; how late."""

    async def run() -> None:
        end = time.time() + seconds
        while time.time() < end:
            target = float(int(time.time()) + 1)
            await asyncio.sleep(max(0.0, target - time.time()))
            out.append(time.time() - target)

    asyncio.run(run())


def measure_xqute(args: argparse.Namespace, root: Path) -> dict[str, float]:
    from xqute.orchestration import Every, JobSpec, Orchestrator
    from xqute.queue import SchedulerService

    db_path = root / "queue.db"
    orch = Orchestrator(db_path)
    service = SchedulerService(db_path, args.workers)
    service.start()
    baseline: list[float] = []
    try:
        t0 = time.time()
        for i in range(args.schedules):
            orch.create_job(JobSpec(
                name=f"tick{i:03d}", command=["true"],
                schedule=Every("1s", concurrency="allow"),
            ))  # fmt: skip
        start = float(int(time.time()) + 2)  # the window: whole seconds
        print(f"  {args.schedules} schedules defined in {time.time() - t0:.2f} s")
        timer = threading.Thread(
            target=bare_timer, args=(args.seconds, baseline), daemon=True
        )
        time.sleep(max(0.0, start - time.time()))
        timer.start()
        time.sleep(args.seconds)
        end = start + args.seconds
        time.sleep(1.5)  # the last second's fires
        timer.join()
        rss_mb = _rss_mb(service)
    finally:
        service.stop(now=True, timeout_s=60)
    db = orch.db
    rows = db.query(
        "SELECT schedule_id, scheduled_for, outcome, lateness_s FROM schedule_fires"
        " WHERE scheduled_for > ? AND scheduled_for <= ?",
        (start, end),
    )
    started = [r for r in rows if r[2] == "started"]
    lateness_ms = [r[3] * 1000 for r in started]
    per_time = {(r[0], r[1]) for r in started}
    expected = {
        (sid, float(t))
        for (sid,) in db.query("SELECT id FROM schedules")
        for t in range(int(start) + 1, int(end) + 1)
    }
    started_ms = [
        (r[0] - r[1]) * 1000
        for r in db.query(
            "SELECT q.started_at, r.scheduled_for FROM runs r JOIN job_queue q ON"
            " q.run_id = r.id WHERE r.scheduled_for > ? AND r.scheduled_for <= ?"
            " AND q.started_at IS NOT NULL",
            (start, end),
        )
    ]
    doubled = db.query(
        "SELECT count(*) FROM (SELECT schedule_id, scheduled_for FROM runs"
        " WHERE schedule_id IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1)"
    )[0][0]
    other = {}
    for r in rows:
        if r[2] != "started":
            other[r[2]] = other.get(r[2], 0) + 1
    orch.close()
    return {
        "fires": len(started),
        "expected": len(expected),
        "missed": len(expected - per_time),
        "doubled": doubled,
        "not_started": other,
        "lateness_median_ms": statistics.median(lateness_ms) if lateness_ms else 0,
        "lateness_p99_ms": percentile(lateness_ms, 99),
        "lateness_max_ms": max(lateness_ms, default=0),
        "job_started_median_ms": statistics.median(started_ms) if started_ms else 0,
        "job_started_p99_ms": percentile(started_ms, 99),
        "baseline_median_ms": statistics.median(baseline) * 1000,
        "baseline_p99_ms": percentile([b * 1000 for b in baseline], 99),
        "daemon_rss_mb": rss_mb,
    }


def _rss_mb(service) -> float:  # type: ignore[no-untyped-def]
    import psutil

    pid = service.status().get("pid")
    try:
        return psutil.Process(pid).memory_info().rss / 2**20 if pid else float("nan")
    except psutil.Error:
        return float("nan")


def measure_cron(minutes: int, root: Path, workers: int) -> dict[str, object] | None:
    """Debian cron and the xqute daemon side by side, each running ``date
    +%s.%N`` at every minute (``* * * * *``) for ``minutes``: when the command
    ran, after the minute began. Needs the ``cron`` package, root, and no cron
    daemon running already (it would run the entry twice)."""
    from xqute.orchestration import Cron, JobSpec, Orchestrator
    from xqute.queue import SchedulerService

    cron = shutil.which("cron")
    if cron is None or os.geteuid() != 0:
        print("  cron: not measured (needs the cron package and root)")
        return None
    if subprocess.run(["pgrep", "-x", "cron"], capture_output=True).returncode == 0:
        print("  cron: not measured (a cron daemon runs already)")
        return None
    cron_log, xq_log = root / "cron.log", root / "xqute.log"
    target = Path("/etc/cron.d") / f"xqbench-{os.getpid()}"
    target.write_text(
        f"* * * * * root date +\\%s.\\%N >> {shlex.quote(str(cron_log))}\n"
    )
    target.chmod(0o644)
    db_path = root / "minutely.db"
    orch = Orchestrator(db_path)
    service = SchedulerService(db_path, workers)
    service.start()
    orch.create_job(JobSpec(
        name="minutely", schedule=Cron("* * * * *", timezone="UTC"),
        shell=f"date +%s.%N >> {shlex.quote(str(xq_log))}",
    ))  # fmt: skip
    proc = subprocess.Popen([cron, "-f"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    print(f"  cron and xqute side by side for {minutes} min ...")
    try:
        time.sleep(minutes * 60 + 5)
    finally:
        proc.terminate()
        proc.wait(10)
        target.unlink()
        service.stop(now=True, timeout_s=60)
    fired = [r[0] * 1000 for r in orch.db.query(
        "SELECT lateness_s FROM schedule_fires WHERE outcome = 'started'"
    )]  # fmt: skip
    orch.close()
    out: dict[str, object] = {}
    for name, log in (("cron", cron_log), ("xqute", xq_log)):
        stamps = [float(x) for x in log.read_text().split()] if log.exists() else []
        late = [(s - int(s) // 60 * 60) * 1000 for s in stamps]
        out[f"{name}_runs"] = len(stamps)
        out[f"{name}_ran_median_ms"] = statistics.median(late) if late else None
        out[f"{name}_ran_max_ms"] = max(late, default=None)
    out["xqute_fired_median_ms"] = statistics.median(fired) if fired else None
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--schedules", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=8, help="daemon workers")
    parser.add_argument("--cron", action="store_true", help="also measure cron")
    parser.add_argument("--cron-minutes", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="xqbench-schedule-", dir=BENCH_DIR))
    load = os.getloadavg()
    print(f"job folders and db in {root}; load average {load[0]:.2f}")
    try:
        result = measure_xqute(args, root)
        if args.cron:
            result["cron"] = measure_cron(args.cron_minutes, root, args.workers)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result["load_after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(json.dumps(result, indent=2))
    ok = True
    for name, target in TARGETS.items():
        value = result[name]
        base = result[name.replace("lateness", "baseline")]
        good = value <= target
        ok &= good
        print(f"{name}: {value:.1f} (target <= {target:g}; bare timer"
              f" {base:.1f} ms, ratio {value / base if base else float('nan'):.1f})"
              f" {'ok' if good else 'MISSED'}")  # fmt: skip
    for name in ("missed", "doubled"):
        good = result[name] == 0
        ok &= good
        print(f"{name}: {result[name]} (target 0) {'ok' if good else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
