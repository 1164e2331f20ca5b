"""Handing a job to its backend: the job's files, retries, the native id.

Engine-side work every backend shares, so that a backend only says how to
start one job (``submit_job``) and which failures are worth retrying
(``is_transient``): the job's folder is prepared (its files from an earlier run
cleared, ``job.status`` and ``job.trial`` written before the wrapper can run),
a transient failure is retried with exponential backoff and jitter
(``submit_retries``, ``submit_backoff_s``), anything else (or a full disk) is a
``SubmitError`` naming the job, and the native id is recorded in ``job.jid``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from ..diskfull import disk_full_reason, is_disk_full
from ..errors import BackendError, SubmitError
from ..job import Job
from ..retry import backoff_delay_s
from ..status import JobStatus

if TYPE_CHECKING:
    from .base import Scheduler

__all__ = ["submit"]

logger = logging.getLogger("xqute")
MAX_SUBMIT_BACKOFF_S = 30.0


async def submit(sched: Scheduler, job: Job) -> None:
    """Submit ``job`` through ``sched`` with retries; record the native id."""
    job.advance(JobStatus.SUBMITTED)
    job.submitted_at = time.time()
    try:
        await sched.file_io(_prepare_files, sched, job)
    except OSError as exc:  # a full disk, a workdir gone read-only ...
        raise SubmitError(_files_failed(job, exc)) from exc
    for attempt in range(sched.submit_retries + 1):
        try:
            jid = await sched.submit_job(job)
            break
        except (TimeoutError, BackendError, OSError) as exc:
            if is_disk_full(exc):  # not worth retrying soon
                raise SubmitError(_files_failed(job, exc)) from exc
            if attempt >= sched.submit_retries or not sched.is_transient(exc):
                raise SubmitError(
                    f"job {job.index}: submission to {sched.name} failed"
                    f" after {attempt + 1} attempt(s): {exc}"
                ) from exc
            delay_s = backoff_delay_s(
                attempt + 1, sched.submit_backoff_s, MAX_SUBMIT_BACKOFF_S
            )
            logger.warning(
                "job %s: submission failed (%s); retrying in %.1fs",
                job.index,
                exc,
                delay_s,
            )
            await asyncio.sleep(delay_s)
        except SubmitError:
            raise
        except Exception as exc:
            raise SubmitError(f"job {job.index}: submission failed: {exc!r}") from exc
    job.jid = str(jid)
    if not sched.jid_is_wrapper_pid:
        try:
            await sched.file_io(job.jid_file.write_text, f"{jid}\n")
        except OSError as exc:  # it runs: we know its id, the file is extra
            logger.warning("job %s: cannot write %s: %s", job.index, job.jid_file, exc)


def _prepare_files(sched: Scheduler, job: Job) -> None:
    job.prepare_metadir()
    if not sched.jid_is_wrapper_pid:
        # before the backend can start the wrapper, which then moves it on
        job.write_status()
    if sched.stale_trial_guard:
        (job.metadir / "job.trial").write_text(f"{job.trial_count}\n")


def _files_failed(job: Job, exc: OSError) -> str:
    """Why a job's files could not be written: ``disk full: ...`` when so."""
    what = f"job {job.index} cannot write its files in {job.metadir}"
    return disk_full_reason(exc, what) if is_disk_full(exc) else f"{what}: {exc}"
