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

from ..errors import BackendError, CommandFailed
from ..job import Job
from ..outcome import PENDING, RUNNING, Observation, Seen
from ..status import JobOutcome
from .arrays import expand_slurm_ids
from .batch import BatchScheduler
from .directives import (
    RenderedDirectives,
    merge_option,
    render_slurm,
    slurm_option_name,
)
from .helpers.command import CommandResult

__all__ = [
    "SACCT_FIELDS",
    "SQUEUE_FORMAT",
    "SlurmScheduler",
    "parse_sacct",
    "parse_squeue",
]

logger = logging.getLogger("xqute")

# generic resource -> (flag, flags that give it explicitly)
_CPUS = ("cpus-per-task", {"cpus-per-task", "c", "cpus-per-gpu"})
_MEM = ("mem", {"mem", "mem-per-cpu", "mem-per-gpu"})
_GPUS = ("gres", {"gres", "gpus", "G", "gpus-per-node", "gpus-per-task"})
_TIME = ("time", {"time", "t"})
_NAME = {"job-name", "J"}
_OUTPUT = {"output", "o"}
_ERROR = {"error", "e"}

_PENDING_STATES = {
    "PENDING",
    "CONFIGURING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESV_DEL_HOLD",
    "SPECIAL_EXIT",
}
_RUNNING_STATES = {
    "RUNNING",
    "COMPLETING",
    "SUSPENDED",
    "STOPPED",
    "SIGNALING",
    "STAGE_OUT",
    "RESIZING",
}
_ENDED: dict[str, tuple[JobOutcome, str | None]] = {
    "COMPLETED": (JobOutcome.SUCCEEDED, None),
    "FAILED": (JobOutcome.FAILED, None),
    "CANCELLED": (JobOutcome.CANCELLED, "cancelled in Slurm outside xqute (scancel)"),
    "TIMEOUT": (JobOutcome.TIMEOUT, "reached its Slurm time limit"),
    "DEADLINE": (JobOutcome.TIMEOUT, "reached its Slurm deadline"),
    "OUT_OF_MEMORY": (JobOutcome.OUT_OF_MEMORY, "ran out of memory (Slurm)"),
    "NODE_FAIL": (JobOutcome.NODE_FAILURE, "its Slurm node failed"),
    "BOOT_FAIL": (JobOutcome.NODE_FAILURE, "its Slurm node failed to boot"),
    "PREEMPTED": (JobOutcome.PREEMPTED, "preempted by Slurm"),
    "REVOKED": (JobOutcome.CANCELLED, "revoked by Slurm (federation)"),
}
_LAUNCH_FAILED = (
    "Slurm could not launch it or killed it with a signal (JobLaunchFailure:"
    " e.g. an unwritable output file, or over its memory limit)"
)
# slurmstepd's lines in the job's stderr (it writes nothing else there)
_MEMORY = ("exceeded memory limit", "exceeded job memory limit", "oom-kill")
_CLUSTER_MARKS = ("*** job ", "*** step ", *_MEMORY)


def _observation(state: str, reason: str | None = None) -> Observation:
    if state in _PENDING_STATES:
        return PENDING
    if state in _RUNNING_STATES:
        return RUNNING
    if state in _ENDED:
        outcome, why = _ENDED[state]
        if outcome is JobOutcome.SUCCEEDED:
            return Observation(Seen.DONE, outcome, None, 0)
        if state == "FAILED" and reason == "JobLaunchFailure":
            why = _LAUNCH_FAILED
        return Observation(Seen.DONE, outcome, why)
    logger.warning("slurm: unknown job state %r; treating it as running", state)
    return RUNNING


SQUEUE_FORMAT = "%i|%T|%r"


def parse_squeue(
    stdout: str, native_ids: Sequence[str], fmt: str = SQUEUE_FORMAT
) -> dict[str, Observation]:
    """``squeue -h -r -t all -o <fmt>`` lines -> observations of our ids (``fmt``
    must hold ``%i`` (the id, ``BASE_TASK`` for array tasks) and ``%T``)."""
    col = {field: i for i, field in enumerate(fmt.split("|"))}
    reason_col = col.get("%r")
    wanted = set(native_ids)
    out: dict[str, Observation] = {}
    for line in stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) < len(col):
            continue
        reason = parts[reason_col] if reason_col is not None else None
        obs = _observation(parts[col["%T"]], reason)
        for jid in expand_slurm_ids(parts[col["%i"]]):
            if jid in wanted:
                out[jid] = obs
    return out


SACCT_FIELDS = ("JobID", "State", "ExitCode", "Reason")


def parse_sacct(
    stdout: str, native_ids: Sequence[str], fields: Sequence[str] = SACCT_FIELDS
) -> dict[str, Observation]:
    """``sacct -X -n -P -o <fields>`` -> observations (``fields`` must include
    JobID, State and ExitCode; Reason is used when given).

    The State may read ``CANCELLED by 0``; ExitCode is ``code:signal`` (a real
    signal gives rc 128+signal; 53 is Slurm's "launch failed", not a signal). A
    job that failed with ExitCode ``0:0`` (cancelled, timed out: the batch step
    got the signal, not the job) has no rc here."""
    col = {name: i for i, name in enumerate(fields)}
    reason_col = col.get("Reason")
    wanted = set(native_ids)
    out: dict[str, Observation] = {}
    for line in stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) < len(fields):
            continue
        reason = parts[reason_col] if reason_col is not None else None
        obs = _observation(parts[col["State"]].split(" ", 1)[0], reason)
        if obs.state is Seen.DONE and obs.outcome is not JobOutcome.SUCCEEDED:
            rc, why = _exit_code(parts[col["ExitCode"]])
            obs = Observation(Seen.DONE, obs.outcome, why or obs.reason, rc)
        for jid in expand_slurm_ids(parts[col["JobID"]]):
            if jid in wanted:
                out[jid] = obs
    return out


def _exit_code(text: str) -> tuple[int | None, str | None]:
    code, _, sig = text.partition(":")
    if not (code.isdigit() and sig.isdigit()):
        return None, None
    if int(sig) == 53:
        return None, _LAUNCH_FAILED
    if int(sig):
        return 128 + int(sig), f"killed by signal {sig} (Slurm ExitCode {text})"
    return int(code) or None, None  # 0: it failed, so not with rc 0


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
