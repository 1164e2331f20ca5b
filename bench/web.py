#!/usr/bin/env python3
"""Benchmark the daemon's HTTP side (xqute.web): /metrics, the jobs page, idle
SSE streams. A real daemon (``xqute service start --http 127.0.0.1:0``) serves a
db of --jobs jobs; every figure is printed with its target and with a baseline
measured in the same run:

  scrape      GET /metrics, median of --repeat (<= 200 ms with 1,000,000 jobs);
              baseline: the same scrape of an empty db, and GET /healthz (the
              HTTP round trip alone)
  jobs_page   GET /jobs?state=all (the first 100 jobs, HTML), median (<= 100 ms);
              baseline: the same rows as JSON (GET /api/jobs) and ``xqute queue
              --all --json --limit 100`` (the CLI, a process of its own)
  sse_idle    the daemon's cpu while --sse clients hold /api/events/stream open
              and nothing happens (< 5% of one core); baseline: its cpu with no
              client over the same time

The db: --jobs rows, 5 namespaces, 3 priority classes; a --active-fraction of
them wait (state ``waiting``, eligible in a year: counted by every scrape, run
by no pool), the rest ended an hour ago (completed, failed, cancelled). No job
runs, so no job folder is made; the db is in --dir (default: a new folder in
the system's temp dir; this VM's ext4 root is slow to create files for
minutes after mass deletions, see docs/performance.md).

    python bench/web.py                        # 1,000,000 jobs (~1 minute to build)
    python bench/web.py --jobs 100000 --repeat 10
    python bench/web.py --active-fraction 1.0  # every job active: the worst case
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse
import http.client
import json
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

TARGETS = {"scrape_ms": 200.0, "jobs_page_ms": 100.0, "sse_idle_cpu_pct": 5.0}
NAMESPACES = ("default", "team-a", "team-b", "team-c", "team-d")
CLASSES = (None, "batch", "high")


def build_db(db_path: Path, jobs: int, active_fraction: float) -> float:
    """Fill a fresh db; seconds it took."""
    from xqute.queue import SqliteJobScheduler

    started = time.perf_counter()
    store = SqliteJobScheduler(db_path)
    batch = 20000
    for start in range(0, jobs, batch):
        n = min(batch, jobs - start)
        store.submit_jobs(
            {"command": ["true"], "name": f"bench_{start + i}",
             "namespace": NAMESPACES[(start + i) % len(NAMESPACES)]}
            for i in range(n)
        )  # fmt: skip
    active = int(jobs * active_fraction)
    now = time.time()

    def shape(conn):
        conn.execute(
            "UPDATE job_queue SET priority_class = CASE id % 3 WHEN 1 THEN 'batch'"
            " WHEN 2 THEN 'high' ELSE NULL END"
        )
        # the newest `active` jobs wait; the older ones ended an hour ago
        conn.execute(
            "UPDATE job_queue SET state = 'waiting', eligible_at = ? WHERE id > ?",
            (now + 365 * 86400, jobs - active),
        )
        conn.execute(
            "UPDATE job_queue SET state = CASE id % 10 WHEN 0 THEN 'failed'"
            " WHEN 1 THEN 'cancelled' ELSE 'completed' END, started_at = ?,"
            " ended_at = ?, return_code = 0 WHERE id <= ?",
            (now - 3700, now - 3600, jobs - active),
        )

    store.db.write(shape)
    store.close()
    return time.perf_counter() - started


class Daemon:
    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.url = ""
        self.pid = 0

    def __enter__(self) -> Daemon:
        from xqute.queue import SchedulerService

        self.service = SchedulerService(self.db_path, 2, http="127.0.0.1:0")
        info = self.service.start()
        self.url, self.pid = info["http"]["url"], info["pid"]
        return self

    def __exit__(self, *exc: object) -> None:
        self.service.stop(now=True, timeout_s=60)


def timed_get(url: str, path: str, repeat: int) -> list[float]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    out = []
    for i in range(repeat + 2):
        t = time.perf_counter()
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - t) * 1000
        if response.status != 200:
            raise SystemExit(f"GET {path}: {response.status} {body[:300]!r}")
        if i >= 2:  # two warm-ups
            out.append(elapsed)
    conn.close()
    return out


def count_cost(url: str) -> tuple[float, float]:
    """What counting the active jobs took in the daemon (its own metric), and
    how old the count the last scrape served was."""
    from prometheus_client.parser import text_string_to_metric_families

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    values = {
        s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
    }
    age = time.time() - values["xqute_jobs_counted_timestamp_seconds"]
    return 1000 * values["xqute_jobs_count_seconds"], age


def cli_ms(db_path: Path, repeat: int) -> list[float]:
    # the console script of this interpreter's xqute (a venv's, even when the
    # venv is not activated), not whichever is first on PATH
    beside = Path(sys.executable).with_name("xqute")
    exe = str(beside) if beside.exists() else shutil.which("xqute") or "xqute"
    argv = [exe, "queue", "--all", "--json", "--limit", "100", "--db", str(db_path)]
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        out.append((time.perf_counter() - t) * 1000)
    return out


def cpu_s(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def idle_cpu_pct(pid: int, seconds: float) -> float:
    before, t = cpu_s(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_s(pid) - before) / (time.monotonic() - t)


def open_streams(url: str, n: int) -> list[socket.socket]:
    parts = urlsplit(url)
    socks = []
    for _ in range(n):
        sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
        sock.sendall(
            f"GET /api/events/stream HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        socks.append(sock)
    for sock in socks:  # each got its headers and first comment: it streams
        if b"200" not in sock.recv(4096).split(b"\r\n", 1)[0]:
            raise SystemExit("an SSE client was refused")
    return socks


def report(f: dict[str, float], args: argparse.Namespace, load: float) -> None:
    t = TARGETS
    from xqute.monitoring.metrics import ACTIVE_BUDGET_S

    where = "at each scrape"
    if f["count_ms"] > 1000 * ACTIVE_BUDGET_S:
        where = (
            f"in the background; the scrapes got a count {f['count_age_s']:.1f} s old"
        )
    lines = [
        f"/metrics with {args.jobs:,} jobs: median {f['scrape_ms']:.1f} ms"
        f" (p95 {f['scrape_p95_ms']:.1f}; target <= {t['scrape_ms']:.0f});"
        f" empty db {f['scrape_empty_ms']:.1f} ms"
        f" ({f['scrape_ms'] / f['scrape_empty_ms']:.1f}x);"
        f" GET /healthz {f['healthz_ms']:.1f} ms",
        f"  counting the active jobs by state, namespace and class took"
        f" {f['count_ms']:.0f} ms ({where})",
        f"jobs page (first 100): {f['jobs_page_ms']:.1f} ms (target <="
        f" {t['jobs_page_ms']:.0f}); the same as JSON {f['jobs_api_ms']:.1f} ms"
        f" ({f['jobs_page_ms'] / f['jobs_api_ms']:.2f}x); `xqute queue --all`"
        f" {f['jobs_cli_ms']:.0f} ms ({f['jobs_page_ms'] / f['jobs_cli_ms']:.2f}x);"
        f" the waiting ones {f['waiting_page_ms']:.1f} ms, the completed ones"
        f" {f['completed_page_ms']:.1f} ms",
        f"{args.sse} idle SSE clients: +{f['sse_idle_cpu_pct']:.2f}% cpu (target <"
        f" {t['sse_idle_cpu_pct']:.0f}%); the daemon alone {f['idle_cpu_pct']:.2f}%,"
        f" with them {f['sse_idle_cpu_total_pct']:.2f}%",
        f"load average {load:.2f} at the start, {f['load_average_end']:.2f} at the end",
    ]
    print("\n" + "\n".join(lines))


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])  # fmt: skip
    parser.add_argument("--jobs", type=int, default=1_000_000, help="jobs in the db")
    parser.add_argument(
        "--active-fraction", type=float, default=0.1,
        help="share of the jobs that wait (the rest ended)",
    )  # fmt: skip
    parser.add_argument("--repeat", type=int, default=20, help="requests per figure")
    parser.add_argument("--sse", type=int, default=50, help="idle SSE clients")
    parser.add_argument("--idle-s", type=float, default=20.0,
                        help="seconds over which idle cpu is measured")  # fmt: skip
    parser.add_argument("--dir", help="where the dbs go (default: a temp folder)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="xqute-bench-web-", dir=args.dir))
    load = os.getloadavg()
    figures: dict[str, float] = {}
    try:
        print(f"dbs in {base}; load average {load[0]:.2f} at the start", flush=True)
        empty = base / "empty" / "queue.db"
        empty.parent.mkdir()
        with Daemon(empty) as d:
            figures["scrape_empty_ms"] = median(
                timed_get(d.url, "/metrics", args.repeat)
            )
        big = base / "big" / "queue.db"
        big.parent.mkdir()
        took = build_db(big, args.jobs, args.active_fraction)
        print(f"built {args.jobs:,} jobs ({args.active_fraction:.0%} waiting) in"
              f" {took:.0f}s", flush=True)  # fmt: skip
        with Daemon(big) as d:
            figures["healthz_ms"] = median(timed_get(d.url, "/healthz", args.repeat))
            scrape = timed_get(d.url, "/metrics", args.repeat)
            figures["scrape_ms"] = median(scrape)
            figures["scrape_p95_ms"] = sorted(scrape)[int(0.95 * (len(scrape) - 1))]
            figures["count_ms"], figures["count_age_s"] = count_cost(d.url)
            figures["jobs_page_ms"] = median(
                timed_get(d.url, "/jobs?state=all&limit=100", args.repeat)
            )
            figures["jobs_api_ms"] = median(
                timed_get(d.url, "/api/jobs?state=all&limit=100", args.repeat)
            )
            figures["jobs_cli_ms"] = median(cli_ms(big, max(3, args.repeat // 4)))
            figures["waiting_page_ms"] = median(
                timed_get(d.url, "/jobs?state=waiting&limit=100", args.repeat)
            )
            figures["completed_page_ms"] = median(
                timed_get(d.url, "/jobs?state=completed&limit=100", args.repeat)
            )
            time.sleep(3)  # settle after the requests
            figures["idle_cpu_pct"] = idle_cpu_pct(d.pid, args.idle_s)
            socks = open_streams(d.url, args.sse)
            try:
                time.sleep(3)
                figures["sse_idle_cpu_total_pct"] = idle_cpu_pct(d.pid, args.idle_s)
            finally:
                for sock in socks:
                    sock.close()
            figures["sse_idle_cpu_pct"] = (
                figures["sse_idle_cpu_total_pct"] - figures["idle_cpu_pct"]
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    figures["load_average_end"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    report(figures, args, load[0])
    failed = [k for k, t in TARGETS.items() if figures[k] > t]
    print("all targets met" if not failed else f"missed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
