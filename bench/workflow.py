#!/usr/bin/env python3
"""Benchmark workflows (xqute.orchestration) against Snakemake, in the same run.

Figures (each printed with its target, and the machine's load):

  dag     a random layered DAG of --tasks tasks (--layers layers, each task
          with 1-3 parents in the previous layer), --workers workers:
          xqute (a daemon; tasks run ``true``) against Snakemake (``--cores
          WORKERS``; jobs ``touch`` their output, which Snakemake needs to
          track them). Throughput from the start of the run to its end,
          with and without each tool's planning (xqute: create + validate
          the workflow; Snakemake: its DAG build, measured by ``-n``).
          Targets: xqute >= 8x Snakemake's throughput (``dag_ratio``) and
          >= 200 tasks/s; the daemon's peak RSS <= 150 MB. Also the CPU the
          daemon spent per task (its own, both threads) and its jobs' (the
          wrappers, bash): CPU per task moves much less with the machine's
          load than tasks/s.
  chain   a chain of --chain tasks, each writing "start"/"end" times
          ($EPOCHREALTIME) to a ledger: the hop, from a task's end to its
          dependent's start, median and p90 (target: median <= 10 ms), for
          xqute and Snakemake alike (``chain_hop_ratio``: Snakemake's median
          over xqute's).

Job folders (xqute's ``<db>.jobs``, Snakemake's working directory) go under
--dir (default /tmp; ``--dir /dev/shm`` for tmpfs). Nothing is deleted until
every figure is measured, and the cost of creating a file there is printed
first (``file_create_us``): this VM's ext4 root is slow to create files for
minutes after mass deletions (docs/performance.md: tens of us normally,
hundreds after a test suite or a benchmark run deleted thousands of files);
both tools create several files per task, so a high figure there lowers both.
Snakemake runs from its own venv (``--snakemake``; by default
``.venv-snakemake/bin/snakemake`` in the repo, else ``snakemake`` on PATH):

    python3 -m venv .venv-snakemake
    .venv-snakemake/bin/pip install 'snakemake>=9,<10'
    python bench/workflow.py                   # 10,000 tasks: ~10-20 min (Snakemake)
    python bench/workflow.py --tasks 2000 --only dag
    python bench/workflow.py --no-snakemake    # xqute only
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse
import importlib.util
import json
import random
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

TARGETS = {  # name: (comparison, target)
    "dag_xqute_tasks_per_s": (">=", 200.0),
    "dag_ratio": (">=", 8.0),
    "daemon_rss_mb": ("<=", 150.0),
    "chain_xqute_hop_median_ms": ("<=", 10.0),
}
REPO = Path(_HERE).parent


def layered(tasks: int, layers: int, seed: int) -> list[tuple[str, list[str]]]:
    """[(name, parents)]: ``layers`` layers, 1-3 random parents each."""
    rng = random.Random(seed)
    width = max(1, tasks // layers)
    out = []
    for layer in range(layers):
        for i in range(width):
            parents = []
            if layer:
                picks = rng.sample(range(width), min(width, rng.randint(1, 3)))
                parents = [f"t{layer - 1}_{j}" for j in picks]
            out.append((f"t{layer}_{i}", parents))
    return out


# ---------------------------------------------------------------- xqute
class RssSampler(threading.Thread):
    """Peak RSS and CPU time (its own, not its jobs') of a process, sampled
    every 0.2 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_mb, self.stop = pid, 0.0, threading.Event()
        self.cpu_s = 0.0

    def run(self) -> None:
        import psutil

        proc = psutil.Process(self.pid)
        while not self.stop.wait(0.2):
            try:
                with proc.oneshot():
                    self.peak_mb = max(self.peak_mb, proc.memory_info().rss / 2**20)
                    times = proc.cpu_times()
                self.cpu_s = times.user + times.system
            except psutil.Error:
                return


def xqute_run(root: Path, tasks: list, workers: int) -> dict[str, float]:
    """Create, run (a daemon with ``workers`` workers) and time a workflow of
    ``tasks`` = [(name, parents, shell or None)]."""
    from xqute.orchestration import Orchestrator, Task, Workflow
    from xqute.queue import SchedulerService

    db = root / "queue.db"
    orch = Orchestrator(db)
    wf = Workflow(
        name="bench",
        tasks=[
            Task(
                name,
                dependencies=deps,
                **({"shell": sh} if sh else {"command": ["true"]}),
            )
            for name, deps, sh in tasks
        ],
    )
    t0 = time.perf_counter()
    orch.create_workflow(wf)
    create_s = time.perf_counter() - t0
    service = SchedulerService(db, workers)
    sampler = None
    try:  # the daemon is stopped whatever happens (it would outlive us)
        sampler = RssSampler(service.start()["pid"])
        sampler.start()
        cpu0 = cpu_times(sampler.pid)
        ex = orch.execute_workflow("bench")
        status = ex.wait(embedded=False)
        cpu1 = cpu_times(sampler.pid)
    finally:
        if sampler is not None:
            sampler.stop.set()
        service.stop(now=True, timeout_s=120)
    assert status.state == "succeeded", (status.state, status.reason)
    run_s = status.ended_at - status.created_at
    first = min(t.started_at for t in status.tasks if t.started_at)
    return {
        "create_s": create_s,
        "run_s": run_s,
        "rss_mb": sampler.peak_mb,
        # the daemon's own CPU during the run, and its reaped children's (the
        # jobs' wrappers and commands)
        "daemon_cpu_s": cpu1[0] - cpu0[0],
        "jobs_cpu_s": cpu1[1] - cpu0[1],
        "first_start_s": first - status.created_at,
    }


def cpu_times(pid: int) -> tuple[float, float]:
    """(CPU seconds of a process itself, of its reaped children)."""
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system, t.children_user + t.children_system


# ---------------------------------------------------------------- snakemake
SNAKEFILE = """\
import json
shell.executable("/bin/bash")
PARENTS = json.load(open("parents.json"))
SHELL = json.load(open("shell.json"))

rule all:
    input: [f"out/{t}" for t in PARENTS]

rule task:
    output: "out/{t}"
    input: lambda wc: [f"out/{p}" for p in PARENTS[wc.t]]
    params: cmd=lambda wc: SHELL.get(wc.t, ":")
    shell: "{params.cmd}; touch {output}"
"""


def snakemake_run(exe: str, root: Path, tasks: list, workers: int) -> dict[str, float]:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Snakefile").write_text(SNAKEFILE)
    (root / "parents.json").write_text(json.dumps({n: d for n, d, _ in tasks}))
    (root / "shell.json").write_text(json.dumps({n: s for n, _, s in tasks if s}))
    argv = [exe, "--cores", str(workers), "--snakefile", "Snakefile", "--nolock"]
    log = root / "snakemake.log"
    t0 = time.perf_counter()
    subprocess.run(
        [*argv, "-n", "--quiet", "all"],
        cwd=root,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    plan_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with log.open("w") as out:
        subprocess.run(argv, cwd=root, check=True, stdout=out, stderr=out)
    wall_s = time.perf_counter() - t0
    return {"plan_s": plan_s, "wall_s": wall_s}


def find_snakemake(given: str | None) -> str | None:
    if given:
        return given
    local = REPO / ".venv-snakemake" / "bin" / "snakemake"
    return str(local) if local.exists() else shutil.which("snakemake")


# ---------------------------------------------------------------- figures
def bench_dag(args: argparse.Namespace, exe: str | None) -> dict[str, float]:
    tasks = [(n, d, None) for n, d in layered(args.tasks, args.layers, args.seed)]
    n = len(tasks)
    root = args.session / "dag"
    xq = xqute_run(root / "xqute", tasks, args.workers)
    out: dict[str, float] = {
        "dag_tasks": n,
        "dag_xqute_tasks_per_s": n / xq["run_s"],
        "dag_xqute_with_plan_tasks_per_s": n / (xq["run_s"] + xq["create_s"]),
        "dag_xqute_create_s": xq["create_s"],
        "dag_xqute_first_start_s": xq["first_start_s"],
        "daemon_rss_mb": xq["rss_mb"],
        "dag_daemon_cpu_ms_per_task": 1000 * xq["daemon_cpu_s"] / n,
        "dag_jobs_cpu_ms_per_task": 1000 * xq["jobs_cpu_s"] / n,
        "dag_xqute_load_after": os.getloadavg()[0],
    }
    if not exe:
        return out
    sm = snakemake_run(exe, root / "snakemake", tasks, args.workers)
    run_only = max(sm["wall_s"] - sm["plan_s"], 1e-9)
    out |= {
        "dag_snakemake_plan_s": sm["plan_s"],
        "dag_snakemake_tasks_per_s": n / sm["wall_s"],
        "dag_snakemake_without_plan_tasks_per_s": n / run_only,
        "dag_snakemake_load_after": os.getloadavg()[0],
    }
    out["dag_ratio"] = (
        out["dag_xqute_with_plan_tasks_per_s"] / out["dag_snakemake_tasks_per_s"]
    )
    out["dag_ratio_without_plans"] = (
        out["dag_xqute_tasks_per_s"] / out["dag_snakemake_without_plan_tasks_per_s"]
    )
    return out


def hops_ms(ledger: Path) -> list[float]:
    """From "NAME s|e TIME" lines of a chain c0 -> c1 -> ...: end(k-1) -> start(k)."""
    times: dict[tuple[int, str], float] = {}
    for line in ledger.read_text().splitlines():
        name, what, at = line.split()
        times[(int(name.lstrip("c")), what)] = float(at.replace(",", "."))
    n = max(k for k, _ in times) + 1
    return [(times[(k, "s")] - times[(k - 1, "e")]) * 1000 for k in range(1, n)]


def bench_chain(args: argparse.Namespace, exe: str | None) -> dict[str, float]:
    out: dict[str, float] = {}
    root = args.session / "chain"
    root.mkdir()
    for tool in ("xqute", "snakemake") if exe else ("xqute",):
        ledger = root / f"{tool}.ledger"
        tasks = [
            (
                f"c{k}",
                [f"c{k - 1}"] if k else [],
                f'echo "c{k} s $EPOCHREALTIME" >> {ledger}; '
                f'echo "c{k} e $EPOCHREALTIME" >> {ledger}',
            )
            for k in range(args.chain)
        ]
        if tool == "xqute":
            xqute_run(root / "xqute", tasks, args.workers)
        else:
            snakemake_run(exe, root / "snakemake", tasks, args.workers)  # type: ignore[arg-type]
        hops = sorted(hops_ms(ledger))
        out[f"chain_{tool}_hop_median_ms"] = statistics.median(hops)
        out[f"chain_{tool}_hop_p90_ms"] = hops[int(0.9 * (len(hops) - 1))]
    if exe:
        out["chain_hop_ratio"] = (
            out["chain_snakemake_hop_median_ms"] / out["chain_xqute_hop_median_ms"]
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=10_000, help="DAG size")
    parser.add_argument("--layers", type=int, default=10, help="DAG layers")
    parser.add_argument("--chain", type=int, default=40, help="chain length")
    parser.add_argument("--workers", type=int, default=2, help="workers/cores")
    parser.add_argument("--seed", type=int, default=1, help="DAG random seed")
    parser.add_argument("--only", default="dag,chain", help="dag, chain or both")
    parser.add_argument("--dir", default=None, help="where job folders go (/tmp)")
    parser.add_argument("--snakemake", default=None, help="snakemake executable")
    parser.add_argument("--no-snakemake", action="store_true", help="xqute only")
    parser.add_argument("--keep", action="store_true", help="keep the folders")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    exe = None if args.no_snakemake else find_snakemake(args.snakemake)
    if not args.no_snakemake and exe is None:
        parser.error("no snakemake found: give --snakemake PATH or --no-snakemake")
    only = {s.strip() for s in args.only.split(",")}
    # Every run writes under one folder, removed once all figures are measured:
    # deleting thousands of files makes creating files slow on this VM's ext4
    # for minutes (docs/performance.md), which would skew the next figure.
    args.session = Path(tempfile.mkdtemp(prefix="xqbench-workflow-", dir=args.dir))
    try:
        figures: dict[str, float | str] = {
            "dir": str(args.session.parent),
            "file_create_us": file_create_us(args.session),
            "load_before": os.getloadavg()[0],
        }
        show = (lambda f: None) if args.json else _print
        show(figures)
        for name, bench in (("dag", bench_dag), ("chain", bench_chain)):
            if name in only:
                got = bench(args, exe)  # printed as soon as measured
                show(got)
                figures.update(got)
    finally:
        if not args.keep:
            shutil.rmtree(args.session, ignore_errors=True)
    tail = {"load_after": os.getloadavg()[0]}
    show(tail)
    figures.update(tail)
    if args.json:
        print(json.dumps(figures, indent=2))


def file_create_us(root: Path) -> float:
    """What creating a file costs there now (``bench/engine.py``'s probe): tens
    of us normally, hundreds after mass deletions on this VM's ext4."""
    spec = importlib.util.spec_from_file_location(
        "xqbench_engine", f"{_HERE}/engine.py"
    )
    engine = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(engine)  # type: ignore[union-attr]
    return engine.file_create_us(str(root))


def _print(figures: dict) -> None:
    for name, value in figures.items():
        target = TARGETS.get(name)
        mark = ""
        if target is not None and isinstance(value, float):
            ok = value >= target[1] if target[0] == ">=" else value <= target[1]
            mark = f"  (target {target[0]} {target[1]:g}: {'ok' if ok else 'MISSED'})"
        shown = f"{value:,.2f}" if isinstance(value, float) else str(value)
        print(f"{name:42} {shown}{mark}", flush=True)


if __name__ == "__main__":
    main()
