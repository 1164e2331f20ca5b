"""The Slurm backend: sbatch, one squeue per poll cycle, sacct, scancel.

Options are sbatch flags written as ``#SBATCH`` directives (``partition``,
``time``, ``mem``, ``cpus-per-task`` or ``cpus_per_task``, ``gres`` ...; any
flag passes through; values are double-quoted, see ``directives``). Generic job
resources map to ``--cpus-per-task``, ``--mem`` (MB), ``--gres=gpu:N`` and
``--time`` (whole minutes, Slurm's unit); an explicit option wins.

Facts this relies on (observed, docs/notes/clusters.md): ``squeue`` needs
``-t all`` to list finished jobs, shows them for MinJobAge seconds, silently
omits unknown ids (exits 1 when the only id is unknown); sacct keeps outcomes;
``scancel`` sends TERM+CONT, then KILL after KillWait, so the wrapper records
"killed" itself; Slurm writes its own cancel/time-limit/memory messages into the
job's stderr file. Memory kills without cgroups show as ``FAILED`` with signal 9
and ``exceeded memory limit`` in stderr, which is what is checked for OOM.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ...errors import BackendError, CommandFailed
from ...job import Job
from ...outcome import Observation
from ..batch import BatchScheduler
from ..directives import RenderedDirectives, merge_option
from ..helpers.command import CommandResult
from .directives import render_slurm, slurm_option_name
from .parse import SACCT_FIELDS, SQUEUE_FORMAT, parse_sacct, parse_squeue

__all__ = ["SlurmScheduler", "stderr_tail"]

logger = logging.getLogger("xqute")

# generic resource -> (flag, flags that give it explicitly)
_CPUS = ("cpus-per-task", {"cpus-per-task", "c", "cpus-per-gpu"})
_MEM = ("mem", {"mem", "mem-per-cpu", "mem-per-gpu"})
_GPUS = ("gres", {"gres", "gpus", "G", "gpus-per-node", "gpus-per-task"})
_TIME = ("time", {"time", "t"})
_NAME = {"job-name", "J"}
_OUTPUT = {"output", "o"}
_ERROR = {"error", "e"}
# slurmstepd's lines in the job's stderr (it writes nothing else there)
_MEMORY = ("exceeded memory limit", "exceeded job memory limit", "oom-kill")
_CLUSTER_MARKS = ("*** job ", "*** step ", *_MEMORY)


class SlurmScheduler(BatchScheduler):
    """Run jobs through Slurm (sbatch/squeue/sacct/scancel)."""

    name: ClassVar[str] = "slurm"
    opt_prefixes: ClassVar[tuple[str, ...]] = ("sbatch_", "slurm_")
    backend_options: ClassVar[None] = None  # every sbatch flag passes through
    own_process_group: ClassVar[bool] = True  # the job script leads its group
    tools: ClassVar[dict[str, str]] = {
        "sbatch": "sbatch",
        "squeue": "squeue",
        "scancel": "scancel",
        "sacct": "sacct",
    }
    transient_errors: ClassVar[tuple[str, ...]] = (
        r"unable to contact slurm controller",
        r"socket timed out",
        r"resource temporarily unavailable",
        r"temporarily unable to accept job",
        r"transport endpoint is not connected",
        r"zero bytes were transmitted",
        r"connection refused",
    )
    default_submit_concurrency: ClassVar[int | None] = 8
    supports_arrays: ClassVar[bool] = True
    array_task_env: ClassVar[str] = "SLURM_ARRAY_TASK_ID"
    killed_rc: ClassVar[int | None] = 143  # scancel sends SIGTERM

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        directives: dict[str, Any] = {}
        for key, value in self.backend_config().items():  # not the tool paths
            merge_option(directives, slurm_option_name(key), value, key)
        self.directives = directives
        # reject unsafe values now, not per job
        render_slurm(directives)
        render_slurm({"job-name": self.jobname_prefix, "output": str(self.workdir)})
        self.rendered_directives = RenderedDirectives(self.job_directives, render_slurm)

    # ------------------------------------------------------------------ script
    def job_directives(self, job: Job) -> dict[str, Any]:
        """The options and resources of a job (without name and output files)."""
        opts = dict(self.directives)
        given = set(opts)
        res = job.resources
        if res.cpus is not None and not given & _CPUS[1]:
            opts[_CPUS[0]] = res.cpus
        if res.mem_mb is not None and not given & _MEM[1]:
            opts[_MEM[0]] = f"{res.mem_mb}M"
        if res.gpus and not given & _GPUS[1]:
            opts[_GPUS[0]] = f"gpu:{res.gpus}"
        if res.time_limit_s is not None and not given & _TIME[1]:
            opts[_TIME[0]] = max(1, math.ceil(res.time_limit_s / 60))
        return opts

    def script_header(self, job: Job) -> list[str]:
        given = set(self.directives)
        own: dict[str, Any] = {}
        if not given & _NAME:
            own["job-name"] = self.job_name(job)
        if not given & _OUTPUT:
            own["output"] = _literal_path(job.stdout_file)
        if not given & _ERROR:
            own["error"] = _literal_path(job.stderr_file)
        if "open-mode" not in given:
            own["open-mode"] = "append"
        return [*self.rendered_directives(job), *render_slurm(own)]

    # ------------------------------------------------------------------ builders
    def submit_argv(self, job: Job, script: Path) -> list[str]:
        return [self.tool("sbatch"), "--parsable", str(script)]

    def parse_submit(self, result: CommandResult) -> str:
        text = result.stdout.strip().split(";", 1)[0]
        if not text.isdigit():
            raise BackendError(f"sbatch printed no job id: {result.stdout!r}")
        return text

    def status_argv(self, native_ids: Sequence[str]) -> list[str]:
        return [
            self.tool("squeue"),
            "-h",
            "-r",
            "-t",
            "all",
            "--jobs=" + ",".join(native_ids),
            "-o",
            SQUEUE_FORMAT,
        ]

    def check_status(self, result: CommandResult) -> None:
        # rc 1 "Invalid job id": the only id asked about is unknown (purged)
        if result.rc != 0 and "invalid job id" not in result.stderr.lower():
            raise CommandFailed(result.argv, result.rc, result.stdout, result.stderr)

    def parse_status(
        self, result: CommandResult, native_ids: Sequence[str]
    ) -> dict[str, Observation]:
        return parse_squeue(result.stdout, native_ids)

    def kill_argv(self, native_ids: Sequence[str]) -> list[str]:
        return [self.tool("scancel"), *native_ids]

    def accounting_argv(self, native_ids: Sequence[str]) -> list[str] | None:
        return [
            self.tool("sacct"),
            "-X",
            "-n",
            "-P",
            "-o",
            ",".join(SACCT_FIELDS),
            "--jobs=" + ",".join(native_ids),
        ]

    def parse_accounting(
        self, result: CommandResult, native_ids: Sequence[str]
    ) -> dict[str, Observation]:
        return parse_sacct(result.stdout, native_ids) if result.rc == 0 else {}

    # ------------------------------------------------------------------ arrays
    def array_key(self, job: Job) -> Hashable:
        return self.rendered_directives(job)

    def array_header(self, jobs: Sequence[Job], array_dir: Path) -> list[str]:
        opts = self.job_directives(jobs[0])
        if not set(opts) & _NAME:
            opts["job-name"] = f"{self.jobname_prefix}-array-{jobs[0].index}"
        # an explicit output/error pattern is the user's; ours link to job files
        for keys, flag, name in (
            (_OUTPUT, "output", "stdout"),
            (_ERROR, "error", "stderr"),
        ):
            if not set(opts) & keys:
                opts[flag] = f"{_literal_path(array_dir)}/%a.{name}"
        opts.setdefault("open-mode", "append")
        opts["array"] = f"0-{len(jobs) - 1}%{min(self.forks, len(jobs))}"
        return render_slurm(opts)

    def array_submit_argv(self, jobs: Sequence[Job], script: Path) -> list[str]:
        return [self.tool("sbatch"), "--parsable", str(script)]

    def parse_array_submit(
        self, result: CommandResult, task_ids: list[int]
    ) -> list[str]:
        base = self.parse_submit(result)
        return [f"{base}_{task}" for task in task_ids]

    # ------------------------------------------------------------------ results
    def cluster_words(self, job: Job) -> tuple[str | None, bool]:
        """slurmstepd's lines in the job's stderr (one read): a memory kill
        (Slurm's memory enforcement SIGKILLs the whole job), and whether Slurm
        explained the end there."""
        said = _slurm_lines(stderr_tail(job))
        memory = [line for line in said if any(m in line.lower() for m in _MEMORY)]
        return (memory[0] if memory else None), bool(said)


def _slurm_lines(text: str) -> list[str]:
    """slurmstepd's messages in a job's stderr (cancel, time limit, memory)."""
    return [
        line.strip()
        for line in text.splitlines()
        if line.startswith("slurmstepd")
        and any(m in line.lower() for m in _CLUSTER_MARKS)
    ]


def _literal_path(path: Path | str) -> str:
    """A path for --output/--error: ``%`` is a pattern character there."""
    return str(path).replace("%", "%%")


def stderr_tail(job: Job, size: int = 8192) -> str:
    """The end of the job's stderr file ("" when there is none)."""
    try:
        with open(job.stderr_file, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - size))
            return fh.read().decode(errors="replace")
    except OSError:
        return ""
