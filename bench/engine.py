#!/usr/bin/env python3
"""Benchmark the engine's local backend against the floor any wrapper-based runner
pays: asyncio subprocesses of ``bash -c`` with stdout/stderr redirected to files
and an rc file written, under the same concurrency limit.

Figures (each measured in a fresh child process; baseline and xqute alternate so
that a noisy machine hurts both alike; medians over --repeat rounds):

  throughput   N jobs of `true` at --forks: jobs/s, xqute/baseline ratio (>= 0.7)
  latency      one `true` job fed and awaited: ms, xqute minus baseline (<= 30 ms)
  display      ``xqute run`` (the command, interpreter start-up included) on N jobs
               that write one line each, with their output shown (the default,
               --group, into a pipe the benchmark reads) and with --quiet, each
               against the baseline running the same jobs: both ratios, which
               must not differ (showing output costs the run nothing), and
               default/quiet
  feed         --feed-jobs jobs fed at forks=4: feed time (< 5 s), peak RSS of the
               driver (<= 300 MB), and the run rate of the first --probe-jobs jobs
               with that many queued against the same with only those queued
               (~1.0: per-job cost does not grow with the queue)

    python bench/engine.py                 # all figures
    python bench/engine.py --only latency --repeat 30
    python bench/engine.py --dir /dev/shm  # job folders on tmpfs

Where job folders live matters: both runners create files in a new folder per
job, and the engine's folder layout (script, stdout, stderr, status, rc, jid)
creates 6 files per job where the baseline creates 3. Creating a file is cheap
(~20-60 us) unless the disk makes it expensive, and one common case does: on an
ext4 without a journal (`journal_task` in /sys/fs/ext4/<dev>/ says <none>), the
kernel will not reuse an inode freed in the last 60 s (360 s while its block is
dirty) and checks every such inode, one by one, on each new file: after many
deletions each new file costs 300-800 us of kernel time for minutes. So this
benchmark deletes nothing until every figure is measured (all runs write under
one folder, removed at the end), and figures taken right after something deleted
many files (a test suite, another benchmark run) are low for the side that
creates more files. `--dir /dev/shm` (tmpfs) shows the engine's own overhead.
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
import json
import resource
import shutil
import statistics
import subprocess
import tempfile
import time

TARGETS = {
    "throughput_ratio": 0.7,
    "latency_extra_ms": 30.0,
    "feed_s": 5.0,
    "rss_mb": 300.0,
}


# ---------------------------------------------------------------- children
async def _baseline(n: int, forks: int, root: str, command: str = "true") -> None:
    """n jobs of ``command`` (``{i}``: the job's index) as the floor does them:
    a folder each, ``bash -c`` with stdout/stderr/rc in files, forks at once."""
    slots = asyncio.Semaphore(forks)

    async def one(i: int) -> None:
        async with slots:
            d = f"{root}/{i}"
            os.mkdir(d)
            proc = await asyncio.create_subprocess_exec(
                "bash",
                "-c",
                f"{command.format(i=i)} > {d}/out 2> {d}/err; echo $? > {d}/rc",
                stdin=subprocess.DEVNULL,
            )
            await proc.wait()

    await asyncio.gather(*(one(i) for i in range(n)))


def child_display(kind: str, n: int, forks: int) -> dict:
    """jobs/s of the baseline or of ``xqute run`` (quiet or default) on n
    jobs that write one line each."""
    root = tempfile.mkdtemp(
        prefix=f"xqbench-{kind}-", dir=os.environ.get("XQBENCH_DIR")
    )
    t0 = time.perf_counter()
    if kind == "baseline":
        asyncio.run(_baseline(n, forks, root, "echo line {i}"))
        return {"rate": n / (time.perf_counter() - t0)}
    jobs = os.path.join(root, "jobs.txt")
    with open(jobs, "w") as fh:
        fh.writelines(f"echo line {i}\n" for i in range(n))
    argv = [sys.executable, "-m", "xqute", "run", jobs, "-j", str(forks),
            "-w", os.path.join(root, "wd")]  # fmt: skip
    if kind == "quiet":
        argv.append("--quiet")
    t0 = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, check=True)
    rate = n / (time.perf_counter() - t0)
    shown = out.stdout.count(b"line ")
    assert shown == (0 if kind == "quiet" else n), shown
    return {"rate": rate}


async def _xqute(n: int, forks: int, root: str) -> None:
    from xqute import Xqute

    xqute = Xqute(workdir=root, forks=forks)
    for _ in range(n):
        await xqute.feed(["true"])
    await xqute.run_until_complete()


def child_throughput(kind: str, n: int, forks: int) -> dict:
    root = tempfile.mkdtemp(
        prefix=f"xqbench-{kind}-", dir=os.environ.get("XQBENCH_DIR")
    )
    if kind == "xqute":
        import xqute  # noqa: F401  (import cost is not part of the run)
    t0 = time.perf_counter()
    asyncio.run((_xqute if kind == "xqute" else _baseline)(n, forks, root))
    return {"rate": n / (time.perf_counter() - t0)}


def child_latency(kind: str, rounds: int) -> dict:
    from xqute import Xqute

    times = []
    for i in range(rounds + 1):  # round 0 warms caches up
        root = tempfile.mkdtemp(
            prefix="xqbench-lat-", dir=os.environ.get("XQBENCH_DIR")
        )
        if kind == "xqute":
            xqute = Xqute(workdir=root)

            async def go(xqute=xqute) -> None:
                await xqute.feed(["true"])
                await xqute.run_until_complete()
        else:

            async def go(root=root) -> None:
                await _baseline(1, 1, root)

        t0 = time.perf_counter()
        asyncio.run(go())
        if i:
            times.append((time.perf_counter() - t0) * 1000)
    return {"ms": statistics.median(times)}


def child_feed(total: int, probe: int) -> dict:
    from xqute import Xqute
    from xqute import simplug as pm

    class StopAfter:
        """Run the first ``probe`` jobs, skip the rest (they cost a hook call)."""

        name = "bench-stop-after"
        started = 0
        first_at = last_at = 0.0

        @pm.impl
        async def on_job_submitting(scheduler, job):
            if StopAfter.started >= probe:
                return False
            StopAfter.started += 1
            if StopAfter.started == 1:
                StopAfter.first_at = time.perf_counter()
            return None

        @pm.impl
        async def on_job_succeeded(scheduler, job):
            StopAfter.last_at = time.perf_counter()

    root = tempfile.mkdtemp(prefix="xqbench-feed-", dir=os.environ.get("XQBENCH_DIR"))
    xqute = Xqute(workdir=root, forks=4, plugins=[StopAfter])

    async def go() -> tuple[float, float]:
        t0 = time.perf_counter()
        for _ in range(total):
            await xqute.feed(["true"])
        fed = time.perf_counter() - t0
        rss_fed = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        await xqute.run_until_complete()
        return fed, rss_fed

    fed_s, rss_fed = asyncio.run(go())
    return {
        "feed_s": fed_s,
        "rss_after_feed_mb": rss_fed,
        "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "probe_rate": probe / max(StopAfter.last_at - StopAfter.first_at, 1e-9),
    }


# ---------------------------------------------------------------- parent
def run_child(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise SystemExit(f"child {args} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--jobs", type=int, default=1000, help="jobs per throughput run"
    )
    parser.add_argument(
        "--forks", type=int, default=16, help="concurrency of throughput runs"
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="rounds (medians are reported)"
    )
    parser.add_argument(
        "--latency-rounds", type=int, default=20, help="single jobs per round"
    )
    parser.add_argument(
        "--feed-jobs", type=int, default=100_000, help="jobs fed in 'feed'"
    )
    parser.add_argument(
        "--probe-jobs", type=int, default=1000, help="jobs run in 'feed'"
    )
    parser.add_argument(
        "--only",
        default="throughput,latency,display,feed",
        help="comma-separated figures to measure",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--dir",
        default=None,
        help="where job folders go (default: the system temp dir)",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        kind, *rest = args.child
        if kind == "throughput":
            result = child_throughput(rest[0], int(rest[1]), int(rest[2]))
        elif kind == "latency":
            result = child_latency(rest[0], int(rest[1]))
        elif kind == "display":
            result = child_display(rest[0], int(rest[1]), int(rest[2]))
        else:
            result = child_feed(int(rest[0]), int(rest[1]))
        print(json.dumps(result))
        return

    # Children write under one folder, removed once every figure is measured:
    # deleting between runs makes the next run's file creation slow (see above).
    where = args.dir or tempfile.gettempdir()
    os.environ["XQBENCH_DIR"] = tempfile.mkdtemp(prefix="xqbench-", dir=where)
    try:
        create_us = file_create_us(os.environ["XQBENCH_DIR"])
        figures = measure(args)
    finally:
        shutil.rmtree(os.environ["XQBENCH_DIR"], ignore_errors=True)
    report(args, figures | {"file_create_us": create_us}, where)


def file_create_us(root: str, folders: int = 100) -> float:
    """Kernel+user time to create one small file in a new folder, right now: the
    figure that tells a disk slowed by recent deletions (see above)."""
    probe = os.path.join(root, "probe")
    os.mkdir(probe)
    t0 = time.process_time()
    for i in range(folders):
        folder = os.path.join(probe, str(i))
        os.mkdir(folder)
        for name in ("a", "b", "c"):
            with open(os.path.join(folder, name), "w") as fh:
                fh.write("0\n")
    return (time.process_time() - t0) / (folders * 3) * 1e6


def measure(args: argparse.Namespace) -> dict[str, float]:
    only = set(args.only.split(","))
    figures: dict[str, float] = {}
    if "throughput" in only:
        base, xq = [], []
        for _ in range(args.repeat):
            base.append(
                run_child("throughput", "baseline", str(args.jobs), str(args.forks))[
                    "rate"
                ]
            )
            xq.append(
                run_child("throughput", "xqute", str(args.jobs), str(args.forks))[
                    "rate"
                ]
            )
        figures |= {
            "baseline_jobs_per_s": statistics.median(base),
            "xqute_jobs_per_s": statistics.median(xq),
            "throughput_ratio": statistics.median(
                x / b for x, b in zip(xq, base, strict=True)
            ),
        }
    if "latency" in only:
        base, xq = [], []
        for _ in range(args.repeat):
            base.append(
                run_child("latency", "baseline", str(args.latency_rounds))["ms"]
            )
            xq.append(run_child("latency", "xqute", str(args.latency_rounds))["ms"])
        figures |= {
            "baseline_single_job_ms": statistics.median(base),
            "xqute_single_job_ms": statistics.median(xq),
            "latency_extra_ms": statistics.median(
                x - b for x, b in zip(xq, base, strict=True)
            ),
        }
    if "display" in only:
        rates: dict[str, list[float]] = {"baseline": [], "quiet": [], "default": []}
        for _ in range(args.repeat):
            for kind in rates:  # alternated: a noisy machine hurts all alike
                child = run_child("display", kind, str(args.jobs), str(args.forks))
                rates[kind].append(child["rate"])
        base = rates["baseline"]

        def ratio(kind: str) -> float:
            return statistics.median(
                x / b for x, b in zip(rates[kind], base, strict=True)
            )

        figures |= {
            "display_baseline_jobs_per_s": statistics.median(base),
            "display_quiet_jobs_per_s": statistics.median(rates["quiet"]),
            "display_default_jobs_per_s": statistics.median(rates["default"]),
            "display_quiet_ratio": ratio("quiet"),
            "display_default_ratio": ratio("default"),
            "display_default_over_quiet": statistics.median(
                d / q for d, q in zip(rates["default"], rates["quiet"], strict=True)
            ),
        }
    if "feed" in only:
        big = run_child("feed", str(args.feed_jobs), str(args.probe_jobs))
        small = run_child("feed", str(args.probe_jobs), str(args.probe_jobs))
        figures |= {
            "feed_jobs": args.feed_jobs,
            "feed_s": big["feed_s"],
            "feed_us_per_job": big["feed_s"] / args.feed_jobs * 1e6,
            "rss_mb": big["rss_peak_mb"],
            "probe_rate_big_queue": big["probe_rate"],
            "probe_rate_small_queue": small["probe_rate"],
            "queue_size_rate_ratio": big["probe_rate"] / small["probe_rate"],
        }
    return figures


def report(args: argparse.Namespace, figures: dict[str, float], where: str) -> None:
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"machine: {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}; "
        f"jobs={args.jobs} forks={args.forks} repeat={args.repeat};"
        f" job folders in {where}"
        f" (a new file there costs {figures.pop('file_create_us'):.0f} us now)"
    )
    for key, value in figures.items():
        target = TARGETS.get(key)
        mark = ""
        if target is not None:
            ok = value >= target if key == "throughput_ratio" else value <= target
            mark = (
                f"   target {'>=' if key == 'throughput_ratio' else '<='} {target:g}: "
                + ("OK" if ok else "MISSED")
            )
        print(f"  {key:26s} {value:12.2f}{mark}")


if __name__ == "__main__":
    main()
