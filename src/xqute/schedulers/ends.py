"""A backend's job that ended: gather the evidence, apply the outcome rule.

The rule itself is pure (``xqute.outcome.decide``); this is its I/O edge for a
backend: read the job's files (``job.rc``, ``job.info``), ask the backend what
its cluster wrote (``Scheduler.cluster_words``, only for a failure on a batch
cluster: one read of the job's stderr), and carry out what the ending says (an
rc xqute records for a job it killed, a line in the job's stderr).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..diskfull import filesystem_full
from ..job import Job
from ..outcome import Ending, Evidence, Observation, read_end
from ..status import JobOutcome, JobStatus

if TYPE_CHECKING:
    from .base import Scheduler

__all__ = ["end_of"]


def end_of(
    sched: Scheduler,
    job: Job,
    observation: Observation | None,
    rule: Callable[[Evidence], Ending],
) -> Ending:
    """How ``job`` ended by ``rule`` (``decide``, or ``read_end``), its side
    effects done."""
    evidence = _evidence(sched, job, observation)
    if evidence.batch and read_end(evidence).outcome.is_failure:
        memory, explained = sched.cluster_words(job)
        evidence = replace(evidence, memory_kill=memory, cluster_explained=explained)
    end = rule(evidence)
    if end.record_rc and end.rc is not None:
        _record_killed(job, end.rc)
    if end.note:
        job.append_stderr(f"{end.note}\n")
    return end


def _evidence(sched: Scheduler, job: Job, obs: Observation | None) -> Evidence:
    traits = {
        "killing": job.status is JobStatus.KILLING,
        "backend": sched.name,
        "batch": sched.cluster_decides,
        "killed_rc": sched.killed_rc,
    }
    if obs is not None and obs.outcome is JobOutcome.SUCCEEDED:
        return Evidence(obs, **traits)  # nothing to read
    rc = job.read_rc_file()
    reason = job.read_info().get("reason")
    disk_full = None
    if rc not in (None, 0) and reason is None and isinstance(sched.workdir, Path):
        disk_full = filesystem_full(job.metadir)  # a failure that says nothing
    return Evidence(
        obs,
        rc_file=rc,
        wrapper_reason=reason,
        rc_garbage=job.unreadable_rc() if rc is None else None,
        disk_full=disk_full,
        **traits,
    )


def _record_killed(job: Job, rc: int) -> None:
    """Write the rc of a job xqute killed, unless the wrapper wrote one."""
    with contextlib.suppress(OSError):
        fd = os.open(job.rc_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w") as rc_file, open(job.info_file, "a") as info:
            info.write(f"end={time.time()}\nreason=killed\n")
            rc_file.write(f"{rc}\n")
