#!/usr/bin/env python3
"""Benchmark the queue service (xqute.queue) against its targets.

Figures (each printed with its target; the machine's load is printed too, since
the other figures depend on it):

  submit        jobs/s through the Python API: in batches of 1,000
                (``submit_jobs``, >= 5,000/s) and one by one (``submit_job``,
                >= 500/s), into a fresh db
  cli           a single ``xqute submit -- true`` (the installed console script)
                against the venv's bare ``python -c pass``, alternated, medians
                of --cli-runs calls each: their ratio (<= 2), and the ms (< 150);
                the same ratio of their CPU time (user + sys, far steadier than
                wall time on a shared machine), and both with the db held open
                by this process as a serving daemon holds it ("served": else
                each submit is the db's last connection, whose close
                checkpoints the WAL into the db, with fsyncs, and deletes it);
                ``python -c "import re"`` too: pip's console script imports
                ``re`` before any of xqute's code runs; and the floor
                (``FLOOR_SUBMIT``: a bare stdlib script doing the submit's one
                INSERT, the least any pip-installed Python command pays)
                against both. Then with a real daemon serving the db
                (``xqute service start --workers 2``, "daemon"): the submit
                goes through its socket and never opens the db
                (queue/submit_wire.py), and the daemon runs each job (``true``)
                meanwhile, on the same cores (<= 2 too). All with compiled
                bytecode (the package is compiled first: with
                PYTHONDONTWRITEBYTECODE set, every call would compile it again)
  file          10,000 jobs queued by one ``xqute submit --file`` (one
                transaction; the environment captured, as the CLI does by
                default): wall time of the whole command (< 1 s), median of 3
  latency       an idle daemon (pool of 2), a job submitted every 50 ms from
                this process through the Python API: from the submit call to the
                job's first instruction (its own $EPOCHREALTIME), median (<= 10
                ms) and p99 (<= 50 ms) of --latency-runs jobs; the same for
                task-spooler (``tsp bash -c ...``, its own server on a private
                socket) in the same run, and the ratio. task-spooler is Debian's
                ``task-spooler`` package (binary ``tsp``; apt-get install
                task-spooler); without it that comparison is skipped
  big           --big-jobs pending jobs in one db: picking the next job (one
                pool dispatch: the 256-job look-ahead window, the policy, the
                atomic claim; < 5 ms) and the window's read alone; a daemon
                serving that db (it runs the jobs meanwhile): its RSS (< 200 MB);
                ``xqute queue --state running`` while it runs (< 300 ms)
  listing       ``xqute queue --state running`` and the default ``xqute queue``
                (pending and running: 100 rows shown) on a db of --big-jobs
                jobs, 98% ended (completed, failed), 2% pending, 4 running,
                the db held open as a serving daemon holds it: medians of
                --cli-runs calls (< 300 ms each), alternated with the same two
                on a db of 5,000 such jobs (100 active: as many rows shown)
                and with ``python -c pass``; the ratios big db / small db (what
                the size costs) and big db / python (the whole command against
                Python's start-up); the default again in a terminal (a pty from
                util-linux ``script``: in color), against ``python -c pass``
                run the same way
  quotas        --big-jobs pending jobs in 50 namespaces, 3 priority classes (one
                preemptible): one pool dispatch cycle as the pool runs it
                (``Dispatcher.dispatch``: the policy's definitions checked, the
                window, the namespaces' usage, the policy, then the claim),
                median, first without quotas, then with a quota on every
                namespace (half of them at their limit): both < 5 ms, and their
                ratio
  throughput    --jobs jobs of ``true`` through a pool of 4 workers, from submit
                to the last end, against the engine's own ``Xqute(forks=4)`` on
                the same jobs; fresh child processes, alternated, medians over
                --repeat rounds (ratio >= 0.6)

    python bench/queue.py                      # everything (~5 minutes)
    python bench/queue.py --only submit,cli,file,latency
    python bench/queue.py --big-jobs 100000    # a quicker big-db figure
"""

from __future__ import annotations

import os
import sys

# This file is named like the stdlib's ``queue``, which the thread pools of the
# code under test import: keep its folder off the import path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse
import asyncio
import json
import shlex
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

TARGETS = {  # name: (comparison, target)
    "submit_batch_jobs_per_s": (">=", 5000.0),
    "submit_single_jobs_per_s": (">=", 500.0),
    "cli_submit_ms": ("<=", 150.0),
    "cli_submit_ratio": ("<=", 2.0),
    "cli_submit_served_ratio": ("<=", 2.0),
    "cli_submit_daemon_ratio": ("<=", 2.0),
    "cli_submit_daemon_cpu_ratio": ("<=", 2.0),
    "submit_file_10k_s": ("<=", 1.0),
    "latency_median_ms": ("<=", 10.0),
    "latency_p99_ms": ("<=", 50.0),
    "pick_next_ms": ("<=", 5.0),
    "dispatch_no_quota_ms": ("<=", 5.0),
    "dispatch_quota_ms": ("<=", 5.0),
    "daemon_rss_mb": ("<=", 200.0),
    "queue_running_ms": ("<=", 300.0),
    "listing_running_ms": ("<=", 300.0),
    "listing_default_ms": ("<=", 300.0),
    "listing_default_tty_ms": ("<=", 300.0),
    "pool_engine_ratio": (">=", 0.6),
}
BENCH_DIR = os.environ.get("XQBENCH_DIR")


def _where() -> str:
    """Where the dbs and job folders go, and on what file system: the VM's
    ext4 root is slow to create files for minutes after mass deletions
    (docs/performance.md)."""
    where = os.path.realpath(BENCH_DIR or tempfile.gettempdir())
    mount, fstype = "/", "?"
    with open("/proc/mounts") as mounts:
        for line in mounts:
            _, point, kind = line.split()[:3]
            inside = where == point or where.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(mount):
                mount, fstype = point, kind
    return f"{where} ({fstype}, mounted on {mount})"


def _tmpdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"xqbench-{prefix}-", dir=BENCH_DIR))


def _xqute_command() -> list[str]:
    """The installed console script itself (not a pyenv shim in front of it)."""
    script = Path(sys.executable).with_name("xqute")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "xqute"]


def _median_ms(argv: list[str], runs: int, env: dict[str, str]) -> float:
    return statistics.median(_run_ms(argv, env)[0] for _ in range(runs))


def _run_ms(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall ms, CPU ms: the child's user + sys time) of one run of ``argv``."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall_ms = (time.perf_counter() - t0) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, argv)
    return wall_ms, (usage.ru_utime + usage.ru_stime) * 1000


# ---------------------------------------------------------------- figures
def bench_submit(n_batch: int, n_single: int) -> dict[str, float]:
    from xqute.queue import SqliteJobScheduler

    root = _tmpdir("submit")
    try:
        store = SqliteJobScheduler(root / "queue.db")
        store.submit_job(["true"])  # create the db: not part of the figure
        specs = [{"command": ["true"], "name": f"b{i}"} for i in range(n_batch)]
        t0 = time.perf_counter()
        for start in range(0, n_batch, 1000):
            store.submit_jobs(specs[start : start + 1000])
        batch_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(n_single):
            store.submit_job(["true"], job_name=f"s{i}")
        single_s = time.perf_counter() - t0
        return {
            "submit_batch_jobs_per_s": n_batch / batch_s,
            "submit_single_jobs_per_s": n_single / single_s,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


#: the least a Python command that queues a job must do, with nothing of
#: xqute: what pip's console script imports (``re``), the sqlite3 C module,
#: open the db as the store opens it, one INSERT of the argv, the working
#: folder and the environment as JSON (quoted by the C function ``json`` uses),
#: commit: ``cli`` times it beside ``xqute submit`` as its floor
FLOOR_SUBMIT = """
import re, os, sys, time, _sqlite3
from _json import encode_basestring_ascii as q
db = _sqlite3.connect(os.environ["XQUTE_DB"], timeout=60, isolation_level=None)
for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "temp_store=MEMORY"):
    db.execute("PRAGMA " + pragma)
db.execute("PRAGMA user_version").fetchone()
env = "{" + ", ".join(q(k) + ": " + q(v) for k, v in os.environ.items()) + "}"
db.execute("BEGIN IMMEDIATE")
row = db.execute(
    "INSERT INTO job_queue (command, working_dir, env, submitted_at)"
    " VALUES (?, ?, ?, ?) RETURNING id",
    ('["true"]', os.getcwd(), env, time.time()),
).fetchone()
db.execute("COMMIT")
sys.stdout.write(f"{row[0]}\\n")
"""


def _compile_package() -> None:
    """Users have the package's bytecode; this environment may not write it
    (PYTHONDONTWRITEBYTECODE): each CLI call would compile it again."""
    import compileall

    import xqute

    compileall.compile_dir(os.path.dirname(xqute.__file__), quiet=1)


def bench_cli(runs: int) -> dict[str, float]:
    import sqlite3

    _compile_package()
    root = _tmpdir("cli")
    try:
        db = root / "queue.db"
        env = {**os.environ, "XQUTE_DB": str(db)}
        commands = {
            "python": [sys.executable, "-c", "pass"],
            "re": [sys.executable, "-c", "import re"],
            "floor": [sys.executable, "-c", FLOOR_SUBMIT],
            "submit": [*_xqute_command(), "submit", "--", "true"],
        }
        _run_ms(commands["submit"], env)  # warm up; the db exists from here on
        times: dict[str, list[tuple[float, float]]] = {}
        for mode in ("", "_served", "_daemon"):
            # served: a connection open meanwhile, as a daemon serving the db;
            # daemon: a daemon, whose socket the submit finds
            holder = sqlite3.connect(db) if mode else None
            if holder is not None:
                holder.execute("SELECT count(*) FROM job_queue").fetchone()
            if mode == "_daemon":
                daemon = [*_xqute_command(), "service"]
                subprocess.run([*daemon, "start", "--workers", "2"], env=env,
                               check=True, capture_output=True)  # fmt: skip
                _run_ms(commands["submit"], env)
            try:
                for _ in range(runs):  # alternated: a noisy machine hurts all alike
                    for name, argv in commands.items():
                        key = f"{name}{mode}"
                        times.setdefault(key, []).append(_run_ms(argv, env))
            finally:
                if mode == "_daemon":
                    subprocess.run([*daemon, "stop", "--now"], env=env,
                                   capture_output=True)  # fmt: skip
                if holder is not None:
                    holder.close()

        def median(key: str, cpu: bool = False) -> float:
            return statistics.median(t[cpu] for t in times[key])

        out = {
            "cli_submit_ms": median("submit"),
            "python_startup_ms": median("python"),
            "python_import_re_ratio": median("re") / median("python"),
        }
        # each against python -c pass; the floor's too, and submit's against it
        for served in ("", "_served", "_daemon"):
            for cpu in (False, True):
                tag = f"{served}{'_cpu' if cpu else ''}"
                python = median(f"python{served}", cpu)
                submit = median(f"submit{served}", cpu)
                floor = median(f"floor{served}", cpu)
                out[f"cli_submit{tag}_ratio"] = submit / python
                out[f"floor_submit{tag}_ratio"] = floor / python
                out[f"cli_submit{tag}_vs_floor"] = submit / floor
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bench_file(n: int = 10_000, rounds: int = 3) -> dict[str, float]:
    root = _tmpdir("file")
    try:
        jobs = root / "jobs.txt"
        jobs.write_text("".join(f"echo {i}\n" for i in range(n)))
        times = []
        for r in range(rounds):
            env = {**os.environ, "XQUTE_DB": str(root / f"q{r}.db")}
            argv = [*_xqute_command(), "submit", "--file", str(jobs)]
            t0 = time.perf_counter()
            out = subprocess.run(argv, env=env, check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
            assert len(out.stdout.split()) == n
        return {"submit_file_10k_s": statistics.median(times)}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _job_time(path: Path, timeout_s: float = 30) -> float:
    """The $EPOCHREALTIME a job wrote into ``path``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            text = path.read_text().strip()
            if text:
                return float(text)
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"no job wrote {path} within {timeout_s}s")
        time.sleep(0.002)


def _percentiles(ms: list[float]) -> tuple[float, float]:
    ordered = sorted(ms)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99


def bench_latency(runs: int) -> dict[str, float]:
    from xqute.queue import SchedulerService, SqliteJobScheduler

    root = _tmpdir("latency")
    figures: dict[str, float] = {}
    try:
        db_path = root / "queue.db"
        store = SqliteJobScheduler(db_path)
        service = SchedulerService(db_path, 2, cpus=2)
        service.start()
        try:
            ms = []
            for i in range(runs + 3):  # the first 3 warm up
                time.sleep(0.05)  # the pool is idle again
                out = root / f"x{i}"
                t0 = time.time()
                store.submit_job(f"echo $EPOCHREALTIME > {out}")
                if i >= 3:
                    ms.append((_job_time(out) - t0) * 1000)
        finally:
            service.stop(now=True, timeout_s=60)
        figures["latency_median_ms"], figures["latency_p99_ms"] = _percentiles(ms)
        tsp = shutil.which("tsp")
        if tsp is None:
            print("(task-spooler not installed: apt-get install task-spooler)")
            return figures
        env = {**os.environ, "TS_SOCKET": str(root / "tsp.sock"),
               "TMPDIR": str(root)}  # fmt: skip
        try:
            ms = []
            for i in range(runs + 3):
                time.sleep(0.05)
                out = root / f"t{i}"
                t0 = time.time()
                subprocess.run(
                    [tsp, "bash", "-c", f"echo $EPOCHREALTIME > {out}"],
                    env=env, check=True, capture_output=True,
                )  # fmt: skip
                if i >= 3:
                    ms.append((_job_time(out) - t0) * 1000)
        finally:
            subprocess.run([tsp, "-K"], env=env, capture_output=True)
        figures["tsp_latency_median_ms"], figures["tsp_latency_p99_ms"] = _percentiles(
            ms
        )
        figures["latency_median_vs_tsp"] = (
            figures["latency_median_ms"] / figures["tsp_latency_median_ms"]
        )
        return figures
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bench_big(n_jobs: int, cli_runs: int) -> dict[str, float]:
    import psutil

    from xqute.queue import SchedulerService, SqliteJobScheduler
    from xqute.queue.claims import sync_cycle
    from xqute.queue.policy import Capacity, Snapshot, decide
    from xqute.queue.window import pending_window

    root = _tmpdir("big")
    try:
        db_path = root / "queue.db"
        store = SqliteJobScheduler(db_path)
        t0 = time.perf_counter()
        batch = 50_000
        for start in range(0, n_jobs, batch):
            count = min(batch, n_jobs - start)
            store.submit_jobs(
                {"command": ["true"], "name": f"job{start + i}", "priority": i % 10}
                for i in range(count)
            )
        build_s = time.perf_counter() - t0
        cap = Capacity(cpus=4, mem_mb=16_000, max_workers=4)
        pending_window(store.db, 1, cap)  # warm the page cache
        samples: dict[str, list[float]] = {"window": [], "claim": []}
        for _ in range(50):
            # one dispatch of the pool: the look-ahead window, the policy, the
            # atomic claim of the job it picks (one write transaction)
            t0 = time.perf_counter()
            window = pending_window(store.db, 256, cap)
            t1 = time.perf_counter()
            start = decide(Snapshot(window, [], cap, time.time())).start[0]
            claimed, _ = sync_cycle(
                store.db, "bench", time.time(), claims=[(start, "/nonexistent")]
            )
            t2 = time.perf_counter()
            assert len(window) == min(256, n_jobs) and len(claimed) == 1
            samples["window"].append((t1 - t0) * 1000)
            samples["claim"].append((t2 - t0) * 1000)
        # give the claimed jobs back: the daemon below must not adopt them
        store.db.write(
            lambda c: c.execute(
                "UPDATE job_queue SET state = 'pending', worker = NULL"
                " WHERE worker = 'bench'"
            )
        )
        store.close()

        service = SchedulerService(db_path, 4, cpus=4)
        service.start()
        try:
            proc = psutil.Process(service.status()["pid"])
            rss_mb = 0.0
            for _ in range(20):  # 5 s of serving the big queue
                time.sleep(0.25)
                rss_mb = max(rss_mb, proc.memory_info().rss / 1024 / 1024)
            env = {**os.environ, "XQUTE_DB": str(db_path), "COLUMNS": "200"}
            argv = [*_xqute_command(), "queue", "--state", "running"]
            queue_ms = _median_ms(argv, cli_runs, env)
            ran = SqliteJobScheduler(db_path).count_jobs()["completed"]
        finally:
            service.stop(now=True, timeout_s=60)
        return {
            "big_db_jobs": n_jobs,
            "big_db_build_s": build_s,
            "pick_next_ms": statistics.median(samples["claim"]),
            "window_256_ms": statistics.median(samples["window"]),
            "daemon_rss_mb": rss_mb,
            "daemon_jobs_run_meanwhile": ran,
            "queue_running_ms": queue_ms,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _mixed_db(path: Path, n_jobs: int) -> None:
    """A db of ``n_jobs`` jobs as a long-lived queue holds them: 98% ended
    (every 50th failed), then 2% pending, 4 of those running."""
    from xqute.queue import SqliteJobScheduler

    store = SqliteJobScheduler(path)
    for start in range(0, n_jobs, 50_000):
        count = min(50_000, n_jobs - start)
        store.submit_jobs(
            {"command": ["true"], "name": f"job{start + i}", "priority": i % 10}
            for i in range(count)
        )
    ended = n_jobs - n_jobs // 50
    store.db.write(lambda c: c.execute(
        "UPDATE job_queue SET state = CASE id % 50 WHEN 0 THEN 'failed'"
        " ELSE 'completed' END, return_code = (id % 50 = 0), worker = 'w',"
        " attempts = 1, started_at = submitted_at + 1, ended_at = submitted_at + 2"
        " WHERE id <= ?", (ended,)))  # fmt: skip
    store.db.write(lambda c: c.execute(
        "UPDATE job_queue SET state = 'running', worker = 'w', attempts = 1,"
        " started_at = submitted_at + 1 WHERE id > ? AND id <= ?",
        (ended, ended + 4)))  # fmt: skip
    store.db.query("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()


def bench_listing(n_jobs: int, runs: int) -> dict[str, float]:
    import sqlite3

    _compile_package()
    root = _tmpdir("listing")
    try:
        _mixed_db(root / "big.db", n_jobs)
        _mixed_db(root / "small.db", 5000)  # 100 active: as many rows
        holders = [sqlite3.connect(root / f"{db}.db") for db in ("big", "small")]
        for holder in holders:  # open meanwhile, as a serving daemon's
            holder.execute("SELECT count(*) FROM worker_nodes").fetchone()
        queue = [*_xqute_command(), "queue"]
        commands = {
            "python": ([sys.executable, "-c", "pass"], "small"),
            "running": ([*queue, "--state", "running"], "big"),
            "default": (queue, "big"),
            "running_small": ([*queue, "--state", "running"], "small"),
            "default_small": (queue, "small"),
        }
        script = shutil.which("script")  # util-linux: a terminal (pty) for both
        if script is not None:
            for name in ("python", "default"):
                argv, db = commands[name]
                tty = [script, "-qec", shlex.join(argv), "/dev/null"]
                commands[f"{name}_tty"] = (tty, db)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):  # alternated: a noisy machine hurts all alike
            for name, (argv, db) in commands.items():
                env = {**os.environ, "XQUTE_DB": str(root / f"{db}.db"),
                       "COLUMNS": "200"}  # fmt: skip
                times[name].append(_run_ms(argv, env)[0])
        for holder in holders:
            holder.close()
        ms = {name: statistics.median(t) for name, t in times.items()}
        return {
            "listing_db_jobs": n_jobs,
            "listing_running_ms": ms["running"],
            "listing_default_ms": ms["default"],
            "listing_running_vs_small_db": ms["running"] / ms["running_small"],
            "listing_default_vs_small_db": ms["default"] / ms["default_small"],
            "listing_running_vs_python": ms["running"] / ms["python"],
            "listing_default_vs_python": ms["default"] / ms["python"],
        } | ({
            "listing_default_tty_ms": ms["default_tty"],
            "listing_default_tty_vs_python": ms["default_tty"] / ms["python_tty"],
        } if script else {})  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bench_quotas(n_jobs: int) -> dict[str, float]:
    from xqute.orchestration import resource_api
    from xqute.queue import SqliteJobScheduler
    from xqute.queue.claims import sync_cycle
    from xqute.queue.dispatch import Dispatcher
    from xqute.queue.policy import Capacity, PolicyConfig

    root = _tmpdir("quotas")
    try:
        store = SqliteJobScheduler(root / "queue.db")
        db = store.db
        classes = ("low", "mid", "high")
        for name, value in zip(classes, (0, 100, 1000), strict=True):
            resource_api.create_priority_class(
                db, {"name": name, "value": value, "preemptible": name == "low"}
            )
        for start in range(0, n_jobs, 50_000):
            count = min(50_000, n_jobs - start)
            store.submit_jobs(
                {"command": ["true"], "namespace": f"ns{(start + i) % 50}",
                 "priority_class": classes[(start + i) % 3]}
                for i in range(count)
            )  # fmt: skip
        # the even namespaces run a job on another pool: at their quota below
        held = list(range(1, 51, 2))  # ids 1..50 are ns0..ns49's first jobs
        db.write(lambda c: c.execute(
            "UPDATE job_queue SET state = 'running', worker = 'elsewhere'"
            f" WHERE id IN ({','.join(map(str, held))})"))  # fmt: skip
        release = (
            "UPDATE job_queue SET state = 'pending', worker = NULL, started_at = NULL"
            " WHERE worker = 'bench'"
        )
        cap = Capacity(cpus=64, mem_mb=256_000, max_workers=64)

        def cycles(label: str) -> float:
            dispatcher = Dispatcher(256, PolicyConfig())
            dispatcher.dispatch(db, cap, [], "bench")  # reads the definitions
            times = []
            for _ in range(50):
                t0 = time.perf_counter()
                decision = dispatcher.dispatch(db, cap, [], "bench")
                start = decision.start[0]
                claimed, _ = sync_cycle(db, "bench", time.time(),
                                        claims=[(start, "/nonexistent")])  # fmt: skip
                times.append((time.perf_counter() - t0) * 1000)
                assert len(claimed) == 1, label
                db.write(lambda c: c.execute(release))  # the same queue each time
            return statistics.median(times)

        plain = cycles("no quotas")
        for i in range(50):
            resource_api.create_resource_quota(
                db, {"name": f"q{i}", "namespace": f"ns{i}", "cpu": 1}
            )
        quota = cycles("quotas")
        return {
            "dispatch_no_quota_ms": plain,
            "dispatch_quota_ms": quota,
            "dispatch_quota_ratio": quota / plain,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------- throughput
def child_pool(n: int, workers: int) -> dict[str, float]:
    from xqute.queue import SqliteJobScheduler, WorkerPoolManager

    root = _tmpdir("pool")  # removed by bench_throughput, see there
    store = SqliteJobScheduler(root / "queue.db")
    pool = WorkerPoolManager(store, workers, cpus=workers)
    pool.start_workers()
    t0 = time.perf_counter()
    store.submit_jobs([{"command": ["true"]}] * n)
    pool.wait_idle(poll_s=0.01)
    elapsed = time.perf_counter() - t0
    pool.stop_workers()
    counts = store.count_jobs()
    assert counts["completed"] == n, counts
    return {"rate": n / elapsed}


def child_engine(n: int, forks: int) -> dict[str, float]:
    from xqute import Xqute

    root = _tmpdir("engine")  # removed by bench_throughput, see there
    xqute = Xqute(workdir=str(root), forks=forks)

    async def go() -> None:
        for _ in range(n):
            await xqute.feed(["true"])
        await xqute.run_until_complete()

    t0 = time.perf_counter()
    asyncio.run(go())
    return {"rate": n / (time.perf_counter() - t0)}


def run_child(*args: str, env: dict[str, str] | None = None) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if out.returncode:
        raise SystemExit(f"child {args} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_throughput(n: int, repeat: int) -> dict[str, float]:
    # The runs' folders go once all rounds are done: on ext4 without a journal,
    # deleting thousands of files makes creating files slow for minutes after
    # (see bench/engine.py --help), which would skew the next round.
    session = _tmpdir("throughput")
    child_env = {**os.environ, "XQBENCH_DIR": str(session)}
    pool, engine = [], []
    try:
        for _ in range(repeat):
            engine.append(run_child("engine", str(n), "4", env=child_env)["rate"])
            pool.append(run_child("pool", str(n), "4", env=child_env)["rate"])
    finally:
        shutil.rmtree(session, ignore_errors=True)
    return {
        "engine_jobs_per_s": statistics.median(engine),
        "pool_jobs_per_s": statistics.median(pool),
        "pool_engine_ratio": statistics.median(
            p / e for p, e in zip(pool, engine, strict=True)
        ),
    }


# ---------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per pool run")
    parser.add_argument("--repeat", type=int, default=3, help="throughput rounds")
    parser.add_argument(
        "--big-jobs",
        type=int,
        default=1_000_000,
        help="jobs in the db of 'big', 'listing' and 'quotas'",
    )
    parser.add_argument("--cli-runs", type=int, default=15, help="CLI calls timed")
    parser.add_argument(
        "--latency-runs", type=int, default=100, help="jobs timed in 'latency'"
    )
    parser.add_argument(
        "--only",
        default="submit,cli,file,latency,big,listing,quotas,throughput",
        help="comma-separated figures to measure",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        kind, n, workers = args.child
        child = child_pool if kind == "pool" else child_engine
        print(json.dumps(child(int(n), int(workers))))
        return

    only = set(args.only.split(","))
    load_before = os.getloadavg()[0]
    figures: dict[str, float] = {}
    if "submit" in only:
        figures |= bench_submit(10_000, 2_000)
    if "cli" in only:
        figures |= bench_cli(args.cli_runs)
    if "file" in only:
        figures |= bench_file()
    if "latency" in only:
        figures |= bench_latency(args.latency_runs)
    if "big" in only:
        figures |= bench_big(args.big_jobs, max(5, args.cli_runs // 3))
    if "listing" in only:
        figures |= bench_listing(args.big_jobs, args.cli_runs)
    if "quotas" in only:
        figures |= bench_quotas(args.big_jobs)
    if "throughput" in only:
        figures |= bench_throughput(args.jobs, args.repeat)
    load_after = os.getloadavg()[0]
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"machine: {os.cpu_count()} cpus, load {load_before:.2f} -> {load_after:.2f};"
        f" jobs={args.jobs} repeat={args.repeat} big-jobs={args.big_jobs}"
    )
    print(f"dbs and job folders under {_where()}")
    for key, value in figures.items():
        mark = ""
        if key in TARGETS:
            op, target = TARGETS[key]
            ok = value >= target if op == ">=" else value <= target
            mark = f"   target {op} {target:g}: {'OK' if ok else 'MISSED'}"
        print(f"  {key:28s} {value:12.2f}{mark}")


if __name__ == "__main__":
    main()
