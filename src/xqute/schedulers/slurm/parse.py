"""Slurm's status and accounting output, read: ``squeue`` lines and ``sacct``
records into observations, array task ids unfolded. Pure functions, unit-tested
with output captured from the real tools (tests/data/slurm).

Facts (docs/notes/clusters.md): ``squeue`` needs ``-t all`` to list finished
jobs and omits unknown ids; ``sacct`` keeps outcomes (``CANCELLED by 0``), with
an ExitCode of ``code:signal``; pending array tasks are folded as
``297_[2-3%1]``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from ...outcome import PENDING, RUNNING, Observation, Seen
from ...status import JobOutcome
from ..arrays import expand_ranges

__all__ = [
    "SACCT_FIELDS",
    "SQUEUE_FORMAT",
    "expand_slurm_ids",
    "parse_sacct",
    "parse_squeue",
]

logger = logging.getLogger("xqute")
_FOLDED = re.compile(r"^(\d+)_\[([^\]]*)\]$")

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


def expand_slurm_ids(text: str) -> list[str]:
    """A Slurm ``%i``/JobID: ``42`` or ``42_3`` as is; a folded ``42_[2-3%1]``
    becomes ``["42_2", "42_3"]``."""
    match = _FOLDED.match(text)
    if not match:
        return [text]
    return [f"{match[1]}_{task}" for task in expand_ranges(match[2])]
