#!/usr/bin/env python3
"""Benchmark the Slurm/SGE/HTCondor backends against submitting directly from a
shell.

N trivial jobs go through the real cluster twice, alternately (so that a noisy
machine hurts both alike):

  direct   a shell loop of ``sbatch --parsable -o /dev/null --wrap true`` (or
           ``qsub -terse -b y -o /dev/null -j y true``, or ``condor_submit
           -terse`` of /bin/true), then waiting until the queue lists none of
           them (the logic of scripts/capture/baseline.sh)
  xqute    the same N jobs fed to ``Xqute(scheduler, forks=N)``: each runs
           through the wrapped script, with its files in the job folder

Figures: wall time of each (median over --repeat rounds) and the ratio xqute /
direct (target <= 1.2); the status-query calls per poll cycle (target 1: the
status tool is a logging wrapper that execs the real one, and the scheduler
counts its poll cycles) and the most job ids one call carried (= N: all in
flight in one call); the machine load before and after.

    python bench/cluster.py --scheduler slurm
    python bench/cluster.py --scheduler sge --jobs 200 --repeat 1
    python bench/cluster.py --scheduler sge --array     # one array job
    python bench/cluster.py --scheduler htcondor        # the pool's tools submit
                                                        # as its plain user
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
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

# the status tool's logging wrapper is the integration tests' own
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from backend_services import logging_wrapper

TARGET_RATIO = 1.2

DIRECT = {
    "slurm": """
ids=()
for i in $(seq "$N"); do ids+=("$(sbatch --parsable -o /dev/null --wrap true)"); done
list=$(IFS=,; echo "${ids[*]}")
while [ -n "$(squeue -h -t PD,R,CG,CF -j "$list" -o %i)" ]; do sleep 0.2; done
""",
    "sge": """
ids=" "
for i in $(seq "$N"); do ids+="$(qsub -terse -b y -o /dev/null -j y true) "; done
while qstat | awk 'NR > 2 {print $1}' | grep -qxF -f <(tr ' ' '\\n' <<<"$ids" \
    | grep .); do sleep 0.2; done
""",
}
DIRECT["htcondor"] = """
ids=()
for i in $(seq "$N"); do
    out=$(condor_submit -terse -a 'executable = /bin/true' \
        -a 'should_transfer_files = NO' -a 'output = /dev/null' -queue 1)
    ids+=("${out%% *}")
done
while [ -n "$(condor_q "${ids[@]}" -af ClusterId)" ]; do sleep 0.2; done
"""
STATUS_TOOL = {"slurm": "squeue", "sge": "qstat", "htcondor": "condor_q"}


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} (1 min), {five:.2f} (5 min), {os.cpu_count()} cores"


def make_folder(kind: str, scheduler: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"xqbench-{kind}-{scheduler}-"))


def run_direct(scheduler: str, n: int) -> float:
    workdir = make_folder("direct", scheduler)
    t0 = time.perf_counter()
    subprocess.run(
        ["bash", "-c", "set -euo pipefail" + DIRECT[scheduler]],
        env={**os.environ, "N": str(n)},
        cwd=workdir,
        check=True,
    )
    elapsed = time.perf_counter() - t0
    shutil.rmtree(workdir, ignore_errors=True)
    return elapsed


async def _xqute(scheduler: str, n: int, workdir: Path, opts: dict) -> dict:
    from xqute import Xqute
    from xqute.schedulers import get_scheduler

    base = get_scheduler(scheduler)

    class Counting(base):  # type: ignore[misc, valid-type]
        """Counts poll cycles: the poller calls poll_jobs once per cycle."""

        name = scheduler
        cycles = 0

        async def poll_jobs(self, jobs):
            Counting.cycles += 1
            return await super().poll_jobs(jobs)

    xqute = Xqute(Counting, workdir=str(workdir), forks=n, scheduler_opts=opts)
    t0 = time.perf_counter()
    for _ in range(n):
        await xqute.feed(["true"])
    await xqute.run_until_complete()
    elapsed = time.perf_counter() - t0
    bad = [j for j in xqute.jobs if j.rc != 0]
    if bad:
        raise SystemExit(f"{len(bad)} job(s) failed, e.g. {bad[0]!r}: {bad[0].reason}")
    return {"wall_s": elapsed, "cycles": Counting.cycles}


def run_xqute(scheduler: str, n: int, array: bool, poll_s: float) -> dict:
    folder = make_folder("xqute", scheduler)
    tool = STATUS_TOOL[scheduler]
    try:
        wrapper, log = logging_wrapper(tool, folder)
    except FileNotFoundError as exc:
        raise SystemExit(str(exc)) from exc
    opts = {tool: str(wrapper), "array": array, "poll_interval_s": poll_s}
    try:
        stats = asyncio.run(_xqute(scheduler, n, folder / "work", opts))
        calls = log.read_text().splitlines() if log.exists() else []
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    widest = max((_ids_in(call, scheduler) for call in calls), default=0)
    return {**stats, "calls": len(calls), "widest": widest}


def _ids_in(call: str, scheduler: str) -> int:
    if scheduler == "sge":
        return -1  # qstat takes no ids: it lists all, xqute filters
    if scheduler == "htcondor":  # condor_q ID ... -json -attributes ...
        return call.split().index("-json")
    for word in call.split():
        if word.startswith("--jobs="):
            return len(word[len("--jobs=") :].split(","))
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scheduler", choices=list(DIRECT), required=True)
    parser.add_argument("--jobs", type=int, default=200, help="jobs per run")
    parser.add_argument("--repeat", type=int, default=1, help="rounds (medians)")
    parser.add_argument(
        "--array", action="store_true", help="xqute submits one array job"
    )
    parser.add_argument(
        "--poll-interval", type=float, default=1.0, help="xqute's poll_interval_s"
    )
    args = parser.parse_args()
    print(f"# {args.scheduler}: {args.jobs} trivial jobs; before: {load()}")
    print(f"# job folders under {tempfile.gettempdir()}")
    direct, xq = [], []
    for rnd in range(args.repeat):
        direct.append(run_direct(args.scheduler, args.jobs))
        print(f"round {rnd + 1}: direct {direct[-1]:.1f} s", file=sys.stderr)
        xq.append(run_xqute(args.scheduler, args.jobs, args.array, args.poll_interval))
        print(f"round {rnd + 1}: xqute {xq[-1]['wall_s']:.1f} s", file=sys.stderr)
    d = statistics.median(direct)
    x = statistics.median(r["wall_s"] for r in xq)
    ratio = x / d
    per_cycle = max(r["calls"] / max(r["cycles"], 1) for r in xq)
    mode = "one array job" if args.array else "one job each"
    print(f"direct shell loop:   {d:6.1f} s  (rounds: {_fmt(direct)})")
    print(f"xqute ({mode}): {x:6.1f} s  (rounds: {_fmt(r['wall_s'] for r in xq)})")
    ok = "OK" if ratio <= TARGET_RATIO else "MISSED"
    print(f"ratio xqute/direct:  {ratio:6.2f}   target <= {TARGET_RATIO} {ok}")
    last = xq[-1]
    widest = (
        f", widest call {last['widest']} ids"
        if last["widest"] >= 0
        else "; qstat lists all jobs, xqute filters"
    )
    ok = "OK" if per_cycle <= 1.0 else "MISSED"
    print(
        f"{STATUS_TOOL[args.scheduler]} calls per poll cycle: {per_cycle:.2f}"
        f" ({last['calls']} calls / {last['cycles']} cycles{widest})"
        f"   target 1 {ok}"
    )
    print(f"# after: {load()}")


def _fmt(values) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


if __name__ == "__main__":
    main()
