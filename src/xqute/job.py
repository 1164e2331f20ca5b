"""The job: what to run, what it needs, and where its files live.

One folder per job index under the workdir holds every file of the job::

    <workdir>/<index>/
        job.wrapped.<scheduler>   the generated bash script that runs the command
        job.stdout  job.stderr    the command's output
        job.status                the JobStatus value (written by driver and wrapper)
        job.rc                    the exit code, written by the wrapper when it ends
        job.jid                   the backend's id for the job (pid, Slurm id, ...)
        job.info                  start/end times, host, pid, end reason (key=value)
        job.retry/<trial>/        the files of each earlier failed trial

Jobs are created by the hundred thousand, so a Job is a slotted object that touches
no file until it is submitted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import checks
from .resources import EMPTY, Resources
from .status import JobOutcome, JobStatus

if TYPE_CHECKING:
    from .outcome import Ending

__all__ = ["Job"]

_FILES = ("job.stdout", "job.stderr", "job.status", "job.rc", "job.jid", "job.info")
#: every file xqute writes in a job's folder (with ``job.wrapped.*`` and the
#: ``job.retry/`` folder): what a cleanup may remove, nothing else
JOB_FILES = (*_FILES, "job.trial")
# A retry moves these into job.retry/<trial>/; the wrapped script is rewritten.
_ORDER = {
    JobStatus.INIT: 0,
    JobStatus.QUEUED: 1,
    JobStatus.SUBMITTED: 2,
    JobStatus.RUNNING: 3,
    JobStatus.KILLING: 4,
    JobStatus.FINISHED: 5,
    JobStatus.FAILED: 5,
}


def check_command(cmd: Any) -> None:
    """Raise ConfigError for what ``Xqute.feed`` cannot run (an empty command
    included)."""
    checks.command(cmd)


class Job:
    """A job of the engine; created by ``Xqute.feed`` (or ``Scheduler.create_job``).

    An empty ``cmd`` (``""``, ``()``) makes a job that runs nothing and succeeds,
    to be given its command later (``job.cmd = ("bash", "job.script")``), as xqute
    2.x's clients do; ``Xqute.feed`` refuses an empty command it is given itself.
    """

    __slots__ = (
        "_error_retry",
        "_metadir",
        "_num_retries",
        "_status",
        "cmd",
        "cwd",
        "ended_at",
        "envs",
        "index",
        "inherit_env",
        "jid",
        "outcome",
        "rc",
        "reason",
        "resources",
        "started_at",
        "submitted_at",
        "timeout_s",
        "trial_count",
        "workdir",
    )

    def __init__(
        self,
        index: int,
        cmd: str | Sequence[Any],
        workdir: Any,
        envs: Mapping[str, Any] | None = None,
        *,
        cwd: str | os.PathLike[str] | None = None,
        timeout_s: float | None = None,
        resources: Resources | Mapping[str, Any] | None = None,
    ) -> None:
        self.index = index
        self.cmd = checks.command(cmd, allow_empty=True)
        self.envs = checks.env_vars(envs)
        #: False: the job sees only its ``envs`` (and xqute's), not the
        #: environment of the process that starts it (a queue job submitted
        #: with export_env="ALL": the submitter's environment)
        self.inherit_env = True
        self.workdir = workdir
        self.cwd = os.fspath(cwd) if cwd is not None else None
        if timeout_s is not None:
            checks.seconds("timeout_s", timeout_s)
        self.timeout_s = timeout_s
        self.resources = Resources.parse(resources) if resources is not None else EMPTY
        self._metadir: Any = None
        self._status = JobStatus.INIT
        self.trial_count = 0
        self.jid: str | None = None
        self.rc: int | None = None
        self.outcome: JobOutcome | None = None
        self.reason: str | None = None
        # wall-clock times (time.time()) of the current trial, set by the driver
        self.submitted_at: float | None = None
        self.started_at: float | None = None
        self.ended_at: float | None = None
        # xqute 2.x's names, read by its clients (pipen): whether a failure of
        # this job is retried, and how often (set by the 2.x schedulers)
        self._error_retry: bool | None = None
        self._num_retries: int | None = None

    def __repr__(self) -> str:
        return f"<Job {self.index} {self._status.name} cmd={self.cmd!r}>"

    # ------------------------------------------------------------------ files
    @property
    def metadir(self) -> Path:
        if self._metadir is None:
            self._metadir = self.workdir / str(self.index)
        return self._metadir

    @property
    def stdout_file(self) -> Path:
        return self.metadir / "job.stdout"

    @property
    def stderr_file(self) -> Path:
        return self.metadir / "job.stderr"

    @property
    def status_file(self) -> Path:
        return self.metadir / "job.status"

    @property
    def rc_file(self) -> Path:
        return self.metadir / "job.rc"

    @property
    def jid_file(self) -> Path:
        return self.metadir / "job.jid"

    @property
    def info_file(self) -> Path:
        return self.metadir / "job.info"

    @property
    def retry_dir(self) -> Path:
        return self.metadir / "job.retry"

    def wrapped_script_file(self, scheduler_name: str) -> Path:
        return self.metadir / f"job.wrapped.{scheduler_name}"

    # ------------------------------------------------------------------ state
    @property
    def status(self) -> JobStatus:
        return self._status

    @status.setter
    def status(self, value: JobStatus) -> None:
        self._status = JobStatus(value)

    def advance(self, new: JobStatus) -> bool:
        """Move to ``new`` if that is forward; a late or stale update is ignored."""
        if _ORDER[new] <= _ORDER[self._status]:
            return False
        self._status = new
        return True

    @property
    def is_done(self) -> bool:
        return self._status.is_done

    async def get_status(self, refresh: bool = False) -> JobStatus:
        """The job's status; ``refresh`` also reads what the wrapper wrote."""
        if refresh:
            text = await _read_text(self.status_file)
            if text and text.strip().isdigit():
                with contextlib.suppress(ValueError):
                    self.advance(JobStatus(int(text.strip())))
        return self._status

    async def get_rc(self) -> int | None:
        """The exit code: known once the job ended; ``None`` before that."""
        if self.rc is None:
            text = await _read_text(self.rc_file)
            if text and text.strip().lstrip("-").isdigit():
                return int(text.strip())
        return self.rc

    async def get_jid(self) -> str | None:
        """The backend's id for the job (a pid for local, a job id for Slurm ...)."""
        if self.jid is None:
            text = await _read_text(self.jid_file)
            if text:
                return text.strip() or None
        return self.jid

    def read_rc_file(self) -> int | None:
        """The rc the wrapper wrote, or None while there is none (or it is
        partial, or garbage: see ``unreadable_rc``)."""
        try:
            text = self.rc_file.read_text(errors="replace")
        except OSError:
            return None
        text = text.strip()
        return int(text) if text.lstrip("-").isdigit() else None

    def unreadable_rc(self) -> bytes | None:
        """The start of job.rc when it is there but holds no exit code."""
        try:
            data = self.rc_file.read_bytes().strip()
        except OSError:
            return None
        return None if not data or data.lstrip(b"-").isdigit() else data[:32]

    def read_status_file(self) -> JobStatus | None:
        """The status last written to job.status (by the wrapper or the driver)."""
        try:
            text = self.status_file.read_text().strip()
            return JobStatus(int(text))
        except (OSError, ValueError):
            return None

    def read_info(self) -> dict[str, str]:
        """The key=value lines the wrapper wrote (start, end, host, pid, reason)."""
        try:
            text = self.info_file.read_text(errors="replace")
        except OSError:
            return {}
        info = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                info[key] = value
        return info

    def settle(self, ending: Ending) -> None:
        """Record how the trial ended (``outcome.decide``): the one place the
        engine sets a job's rc, outcome and reason."""
        self.rc, self.outcome, self.reason = ending.rc, ending.outcome, ending.reason

    def append_stderr(self, text: str) -> None:
        """Add a driver-side message (e.g. why submission failed) to job.stderr."""
        with contextlib.suppress(OSError):
            self.metadir.mkdir(parents=True, exist_ok=True)
            with open(self.stderr_file, "a") as fh:
                fh.write(text)

    def write_status(self, status: JobStatus | None = None) -> None:
        self.status_file.write_text(f"{int(status or self._status)}\n")

    def add_envs(self, envs: Mapping[str, Any] | None) -> None:
        """Add environment variables (checked as ``envs=`` is) to the job's."""
        extra = checks.env_vars(envs)
        if extra:
            self.envs = {**(self.envs or {}), **extra}

    async def set_status(self, status: JobStatus, flush: bool = True) -> None:
        """Set the status as a client decided it (xqute 2.x's API: pipen marks a
        cached job FINISHED, or a job whose output is missing FAILED, from its
        hooks), and write it to job.status unless ``flush`` is False."""
        self._status = JobStatus(status)
        if flush:
            await _write_text(self.status_file, f"{int(self._status)}\n")

    # ------------------------------------------------------------------ trials
    def prepare_metadir(self) -> None:
        """Create the job's folder; on a first trial, clear the files an older run
        of xqute left there. Only xqute's own files: the folder may hold the
        client's (pipen writes job.script and an output link before feeding)."""
        md = self.metadir
        if isinstance(md, Path):  # user-only: its script holds the environment
            try:
                md.mkdir(mode=0o700)
                return
            except FileExistsError:
                os.chmod(md, 0o700)
            except FileNotFoundError:  # the workdir is gone: user-only too
                md.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                md.mkdir(mode=0o700, exist_ok=True)
                return
        else:  # an object store: a folder exists once a file is in it
            md.mkdir(parents=True, exist_ok=True)
        self._clear_outputs()
        if self.trial_count == 0:
            (md / "job.trial").unlink(missing_ok=True)
            if self.retry_dir.exists():
                _rmtree(self.retry_dir)

    # Path methods, not os/shutil: a cloud path (cloudpathlib) has the same ones
    def _clear_outputs(self) -> None:
        for name in _FILES:
            (self.metadir / name).unlink(missing_ok=True)

    def archive_trial(self) -> None:
        """Move this trial's files to job.retry/<trial>/ before the next trial."""
        self.trial_count += 1
        dest = self.retry_dir / str(self.trial_count)
        if dest.exists():
            _rmtree(dest)
        dest.mkdir(parents=True, exist_ok=True)
        for name in _FILES:
            with contextlib.suppress(FileNotFoundError):
                (self.metadir / name).rename(dest / name)

    def reset_for_retry(self) -> None:
        self.archive_trial()
        self._status = JobStatus.QUEUED
        self.jid = self.rc = self.outcome = self.reason = None
        self.submitted_at = self.started_at = self.ended_at = None


def _rmtree(path: Any) -> None:
    if isinstance(path, Path):
        shutil.rmtree(path)
    else:  # a cloud path removes its own tree
        path.rmtree()


async def _write_text(path: Any, text: str) -> None:
    if isinstance(path, Path):
        path.write_text(text)
    else:
        await asyncio.to_thread(path.write_text, text)


async def _read_text(path: Any) -> str | None:
    """Read a small job file; remote paths are read off the event loop."""
    try:
        if isinstance(path, Path):
            return path.read_text(errors="replace")
        return await asyncio.to_thread(path.read_text, errors="replace")
    except OSError:
        return None
