#!/usr/bin/env python3
"""pipen on this xqute against pipen on xqute 2.2.1, in one run.

pipen's README pipeline (examples/pipen_readme.py: P1 sorts each input file, P2
numbers its lines; one job per input file in each process) with --items input
files on the local scheduler, run by the same pipen release in two venvs made by
scripts/pipen-tests.sh: one with this checkout as its xqute, one with the
registry's xqute 2.2.1 (the peer). The two alternate for --rounds rounds, so
that a noisy machine hurts both alike; the figure is the ratio of the medians of
the pipeline's run time (pipen's own start-up, the same in both, is left out).

    python bench/pipen.py                       # 100 items, forks 1 (pipen's default)
    python bench/pipen.py --items 20 --forks 4 --rounds 3
    python bench/pipen.py --dir /dev/shm        # job folders on tmpfs

Target: this xqute >= 10x faster than 2.2.1 (which sleeps ~1 s before and after
each job's command and polls job files every second: ~3 s per job).

Job folders go under --dir (default: the system's temp folder), one folder per
run, removed at the end (nothing is deleted between runs: see
docs/performance.md on ext4 after mass deletions).
"""

from __future__ import annotations

import os
import sys

# bench/queue.py is named like the stdlib's ``queue``: keep this folder off the
# import path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(_HERE).parent
SCRIPT = ROOT / "scripts" / "pipen-tests.sh"
PIPELINE = ROOT / "examples" / "pipen_readme.py"
TARGET_RATIO = 10.0


def venv_python(xqute_spec: str | None) -> str:
    """The python of a pipen venv whose xqute is ``xqute_spec`` (None: this
    checkout), made (or reused) by scripts/pipen-tests.sh."""
    env = {**os.environ, "PYTHON": sys.executable}
    if xqute_spec:
        env["XQUTE_SPEC"] = xqute_spec
    setup = subprocess.run(
        ["bash", str(SCRIPT), "--setup"],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    if setup.returncode != 0:
        sys.exit(
            f"making the venv for {xqute_spec or 'this xqute'} failed:\n"
            + setup.stderr[-2000:]
        )
    return setup.stdout.strip().splitlines()[-1]


def run_once(python: str, folder: Path, items: int, forks: int) -> float:
    """One pipeline run; its run time in seconds (as the pipeline measured it)."""
    folder.mkdir(parents=True)
    start = time.perf_counter()
    proc = subprocess.run(
        [
            python,
            str(PIPELINE),
            "--scheduler=local",
            f"--workdir={folder / 'wd'}",
            f"--outdir={folder / 'out'}",
            f"--items={items}",
            f"--forks={forks}",
        ],
        capture_output=True,
        text=True,
        cwd=folder,
        timeout=7200,
    )
    wall = time.perf_counter() - start
    last = (proc.stdout.strip().splitlines() or [""])[-1].split()
    if proc.returncode != 0 or not last or last[0] != "OK":
        sys.exit(
            f"the pipeline failed in {folder}:\n{proc.stdout[-1500:]}"
            f"\n{proc.stderr[-1500:]}"
        )
    print(f"    {float(last[1]):8.2f} s  (process wall {wall:.2f} s)", flush=True)
    return float(last[1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--items", type=int, default=100, help="input files (100)")
    parser.add_argument(
        "--forks", type=int, default=1, help="jobs at a time (1: pipen's default)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="runs of each (1)")
    parser.add_argument(
        "--peer", default="xqute==2.2.1", help="the peer xqute (xqute==2.2.1)"
    )
    parser.add_argument("--dir", default=None, help="where job folders go")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    args = parser.parse_args()

    ours, peer = venv_python(None), venv_python(args.peer)
    base = Path(tempfile.mkdtemp(prefix="xqute-bench-pipen-", dir=args.dir))
    times: dict[str, list[float]] = {"this xqute": [], args.peer: []}
    try:
        for rnd in range(args.rounds):
            for name, python in (("this xqute", ours), (args.peer, peer)):
                print(f"round {rnd + 1}: {name}", flush=True)
                folder = base / f"{rnd}-{name.replace(' ', '_')}"
                times[name].append(run_once(python, folder, args.items, args.forks))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    ours_s = statistics.median(times["this xqute"])
    peer_s = statistics.median(times[args.peer])
    ratio = peer_s / ours_s
    summary = {
        "items": args.items,
        "jobs": 2 * args.items,
        "forks": args.forks,
        "rounds": args.rounds,
        "job_folders": str(base),
        "this_xqute_s": round(ours_s, 3),
        "peer": args.peer,
        "peer_s": round(peer_s, 3),
        "speedup": round(ratio, 2),
        "target": TARGET_RATIO,
        "ok": ratio >= TARGET_RATIO,
    }
    if args.json:
        print(json.dumps(summary))
        return
    print(
        f"\npipen README pipeline, {args.items} items ({2 * args.items} jobs),"
        f" local scheduler, forks={args.forks}, job folders under {base}\n"
        f"  this xqute : {ours_s:8.2f} s\n"
        f"  {args.peer}: {peer_s:8.2f} s\n"
        f"  speed-up   : {ratio:8.1f}x  (target >= {TARGET_RATIO:g}x:"
        f" {'met' if summary['ok'] else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
