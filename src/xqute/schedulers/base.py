"""The Scheduler base: what every backend shares.

A backend subclass only says how to submit, kill and look at jobs. Written the
seed way, that is three coroutines::

    class MyScheduler(Scheduler):
        name = "mysched"
        async def submit_job(self, job): ...      # start it; return the backend's id
        async def kill_job(self, job): ...
        async def job_is_running(self, job): ...  # -> bool

and the base does the rest: it writes the wrapped script
(``await self.wrapped_job_script(job)``), retries transient submit failures, follows
in-flight jobs with ONE poll per cycle for all of them (``poll_jobs``, which batch
backends override with a single status command; the seed version asks
``job_is_running`` for each), resolves jobs that left the backend from the rc file the
wrapper wrote, and reports a job that vanished without one as lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from .. import _log  # noqa: F401  (the NullHandler of xqute's logger)
from ..diskfull import disk_full_reason, filesystem_full, is_disk_full
from ..errors import BackendError, ConfigError, SubmitError
from ..hooks import HookCaller
from ..job import Job
from ..resources import Resources
from ..retry import backoff_delay_s
from ..script import render_wrapped_script
from ..status import JobErrorStrategy, JobOutcome, JobStatus
from ..units import parse_duration_s
from .poller import GONE, PENDING, RUNNING, Observation, Poller

__all__ = ["Observation", "Scheduler", "SeedThroughEngineAPI"]

logger = logging.getLogger("xqute")

# Options every backend understands; ``timeout`` keeps its historical name.
GENERIC_OPTIONS: dict[str, str] = {
    "timeout": "per-job time limit in seconds (or 90s/15m/1h), then the job is killed",
    "poll_interval_s": "seconds between status polls of in-flight jobs (default 1)",
    "poll_interval_max_s": "longest poll interval reached by backing off (default 10)",
    "kill_grace_s": "seconds a killed job gets between SIGTERM and SIGKILL (default 5)",
    "submit_retries": "retries of a submission that failed transiently (default 3)",
    "lost_grace_s": "seconds a job may be gone from the backend without an rc file"
    " before it is failed as lost (default 30)",
}
KILLED_BY_XQUTE = "killed by xqute"

# The wrapper's end reasons. A signal the wrapper caught came from outside xqute
# as far as the backend knows: the engine turns its own kills into KILLED.
_REASON_OUTCOMES = {
    "timeout": JobOutcome.TIMEOUT,
    "killed": JobOutcome.CANCELLED,
    "interrupted": JobOutcome.CANCELLED,
    "hangup": JobOutcome.CANCELLED,
}


class Scheduler:
    """Base class of all backends. Constructors do no I/O; ``start()`` does."""

    name: ClassVar[str] = "base"
    #: option-name prefixes stripped for this backend (``sbatch_partition``)
    opt_prefixes: ClassVar[tuple[str, ...]] = ()
    #: backend-specific options with a description; None accepts any name
    #: (backends that pass options through, e.g. every sbatch flag)
    backend_options: ClassVar[Mapping[str, str] | None] = {}
    #: whether the wrapped script leads its own process group on this backend
    own_process_group: ClassVar[bool] = False
    #: the native id is the wrapper's pid, so the wrapper writes job.jid itself
    #: (and the driver skips the SUBMITTED status file: the job starts at once)
    jid_is_wrapper_pid: ClassVar[bool] = False
    #: the driver may give a job up as lost while it still runs somewhere (an
    #: unreachable host): write job.trial, so that a late end cannot overwrite
    #: the files of the job's retry
    stale_trial_guard: ClassVar[bool] = False
    #: first delay before retrying a transient submit failure (doubles, jitter)
    submit_backoff_s: ClassVar[float] = 1.0
    #: the class ``create_job`` makes (a client may use a Job subclass)
    job_class: ClassVar[type[Job]] = Job

    def __init__(
        self,
        workdir: str | os.PathLike[str] = "./.xqute",
        forks: int = 1,
        error_strategy: str = "ignore",
        num_retries: int = 3,
        jobname_prefix: str | None = None,
        submission_batch: int | None = None,
        **opts: Any,
    ) -> None:
        self.workdir = self.make_workdir_path(workdir)
        #: where the job sees the workdir (a container's or a VM's mount point);
        #: None: at the driver's own path
        self.mounted_workdir: str | None = None
        self.forks = forks
        self.error_strategy = JobErrorStrategy.parse(error_strategy)
        self.num_retries = num_retries
        self.submission_batch = submission_batch or forks
        self.jobname_prefix = jobname_prefix or "xqute"
        self.hooks = HookCaller.empty()  # the engine sets its resolved plugin set
        opts = self.normalize_options(opts)
        timeout = opts.pop("timeout", None)
        self.timeout_s = parse_duration_s(timeout, "timeout") if timeout else None
        self.poll_interval_s = _positive(
            opts.pop("poll_interval_s", 1.0), "poll_interval_s"
        )
        self.poll_interval_max_s = max(
            self.poll_interval_s,
            _positive(opts.pop("poll_interval_max_s", 10.0), "poll_interval_max_s"),
        )
        self.kill_grace_s = _positive(opts.pop("kill_grace_s", 5.0), "kill_grace_s")
        self.lost_grace_s = _positive(opts.pop("lost_grace_s", 30.0), "lost_grace_s")
        retries = opts.pop("submit_retries", 3)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"submit_retries {retries!r} must be an integer >= 0")
        self.submit_retries = retries
        self.config: dict[str, Any] = self.validate_options(opts)
        self._poller = Poller(self)

    # ------------------------------------------------------------------ options
    @classmethod
    def for_options(cls, opts: Mapping[str, Any]) -> type[Scheduler]:
        """The class that runs jobs with these options: this one, unless the
        backend is a family whose member an option picks (``scheduler="container"``
        with ``bin="apptainer"`` is ``ApptainerScheduler``). Called before the
        constructor by the engine and the queue's pools."""
        return cls

    @classmethod
    def normalize_options(cls, opts: Mapping[str, Any]) -> dict[str, Any]:
        """Strip this backend's prefixes: ``sbatch_partition`` -> ``partition``."""
        out: dict[str, Any] = {}
        for key, value in opts.items():
            if not isinstance(key, str):
                raise ConfigError(f"option name {key!r} must be a string")
            name = key
            for prefix in cls.opt_prefixes:
                if key.startswith(prefix) and len(key) > len(prefix):
                    name = key[len(prefix) :]
                    break
            if name in {"timeout_s"}:
                name = "timeout"
            out[name] = value
        return out

    def validate_options(self, opts: dict[str, Any]) -> dict[str, Any]:
        """Reject unknown backend options, listing the ones this backend knows."""
        known = self.backend_options
        if known is None:
            return opts
        for key in opts:
            if key not in known:
                raise ConfigError.choice(
                    f"{self.name} scheduler option", key, [*GENERIC_OPTIONS, *known]
                )
        return opts

    def make_workdir_path(self, workdir: str | os.PathLike[str]) -> Any:
        """The workdir as a path object (a cloud backend may return a cloud path)."""
        return Path(os.path.abspath(os.fspath(workdir)))

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Prepare to run jobs (the I/O a constructor must not do)."""
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file, a place we may not write ...
            what = (
                "is a file, not a folder"
                if self.workdir.exists()
                else (f"cannot be created: {exc.strerror or exc}")
            )
            raise ConfigError(f"workdir {str(self.workdir)!r} {what}") from exc

    async def aclose(self) -> None:
        """Stop following jobs; release what ``start`` acquired."""
        await self._poller.aclose()

    # ------------------------------------------------------------------ jobs
    def create_job(
        self,
        index: int,
        cmd: str | Sequence[Any],
        envs: Mapping[str, Any] | None = None,
        *,
        cwd: str | os.PathLike[str] | None = None,
        timeout_s: float | None = None,
        resources: Resources | Mapping[str, Any] | None = None,
    ) -> Job:
        return self.job_class(
            index,
            cmd,
            self.workdir,
            envs,
            cwd=cwd,
            timeout_s=timeout_s,
            resources=resources,
        )

    def job_name(self, job: Job) -> str:
        return f"{self.jobname_prefix}-{job.index}"

    def job_timeout_s(self, job: Job) -> float | None:
        return job.timeout_s or self.timeout_s

    def script_paths(self, job: Job) -> tuple[str, str]:
        """(workdir, job metadir) as the job sees them (``mounted_workdir``)."""
        if self.mounted_workdir is None:
            return str(self.workdir), str(job.metadir)
        return self.mounted_workdir, f"{self.mounted_workdir}/{job.index}"

    def job_script_path(self, job: Job) -> str:
        """The wrapped script's path as the job sees it: what the backend runs."""
        name = job.wrapped_script_file(self.name).name
        return f"{self.script_paths(job)[1]}/{name}"

    def script_header(self, job: Job) -> list[str]:
        """Lines right after the shebang: batch backends put directives here."""
        return []

    def script_snippets(self, job: Job) -> tuple[list[str], list[str], list[str]]:
        """The bash the wrapper runs first, just before the command, and after
        it: the plugins' ``on_jobcmd_init/prep/end`` snippets."""
        hooks = self.hooks
        return (
            hooks.call("on_jobcmd_init", self, job),
            hooks.call("on_jobcmd_prep", self, job),
            hooks.call("on_jobcmd_end", self, job),
        )

    def wrapped_script_text(self, job: Job) -> str:
        workdir, metadir = self.script_paths(job)
        init, prep, end = self.script_snippets(job)
        return render_wrapped_script(
            index=job.index,
            scheduler=self.name,
            workdir=workdir,
            job_metadir=metadir,
            cmd=job.cmd,
            envs=job.envs,
            cwd=job.cwd,
            timeout_s=self.job_timeout_s(job),
            kill_grace_s=self.kill_grace_s,
            own_process_group=self.own_process_group,
            write_pid_as_jid=self.jid_is_wrapper_pid,
            # a wrapper that is the job's pid starts at once: times at its end
            record_times="end" if self.jid_is_wrapper_pid else True,
            inherit_env=job.inherit_env,
            trial=job.trial_count if self.stale_trial_guard else None,
            header=self.script_header(job),
            init=init,
            prep=prep,
            end=end,
        )

    async def wrapped_job_script(self, job: Job) -> Path:
        """Write the job's wrapped script; return its path (to hand to the backend)."""
        path = job.wrapped_script_file(self.name)
        text = self.wrapped_script_text(job)
        if isinstance(path, Path):
            _write_private(path, text)  # it holds the job's environment
        else:
            await self.file_io(path.write_text, text)
        return path

    async def file_io(self, func: Any, *args: Any) -> Any:
        """Run job-file I/O: at once for a local workdir, in a thread for a remote
        one (a gs:// workdir: every call is a network round trip)."""
        if isinstance(self.workdir, Path):
            return func(*args)
        return await asyncio.to_thread(func, *args)

    # ------------------------------------------------------------------ seed API
    async def submit_job(self, job: Job) -> str | int:
        """Start the job's wrapped script; return the backend's id for it."""
        raise NotImplementedError(f"{type(self).__name__} must implement submit_job")

    async def kill_job(self, job: Job) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement kill_job")

    async def job_is_running(self, job: Job) -> bool:
        raise NotImplementedError(
            f"{type(self).__name__} must implement job_is_running"
        )

    # ------------------------------------------------------------------ engine API
    async def submit(self, job: Job) -> None:
        """Submit with retries of transient failures; record the native id."""
        job.advance(JobStatus.SUBMITTED)
        job.submitted_at = time.time()
        try:
            await self.file_io(self._prepare_files, job)
        except OSError as exc:  # a full disk, a workdir gone read-only ...
            raise SubmitError(_files_failed(job, exc)) from exc
        for attempt in range(self.submit_retries + 1):
            try:
                jid = await self.submit_job(job)
                break
            except (TimeoutError, BackendError, OSError) as exc:
                if is_disk_full(exc):  # not worth retrying soon
                    raise SubmitError(_files_failed(job, exc)) from exc
                if attempt >= self.submit_retries or not self.is_transient(exc):
                    raise SubmitError(
                        f"job {job.index}: submission to {self.name} failed"
                        f" after {attempt + 1} attempt(s): {exc}"
                    ) from exc
                delay_s = backoff_delay_s(attempt + 1, self.submit_backoff_s, 30.0)
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
                raise SubmitError(
                    f"job {job.index}: submission failed: {exc!r}"
                ) from exc
        job.jid = str(jid)
        if not self.jid_is_wrapper_pid:
            try:
                await self.file_io(job.jid_file.write_text, f"{jid}\n")
            except OSError as exc:  # it runs: we know its id, the file is extra
                logger.warning(
                    "job %s: cannot write %s: %s", job.index, job.jid_file, exc
                )

    def _prepare_files(self, job: Job) -> None:
        job.prepare_metadir()
        if not self.jid_is_wrapper_pid:
            # before the backend can start the wrapper, which then moves it on
            job.write_status()
        if self.stale_trial_guard:
            (job.metadir / "job.trial").write_text(f"{job.trial_count}\n")

    def is_transient(self, exc: BaseException) -> bool:
        """Whether a submit failure is worth retrying (backends refine this)."""
        return True

    async def kill_jobs(
        self, jobs: Sequence[Job], grace_s: float | None = None
    ) -> None:
        """Kill several jobs; batch backends override this with one command.

        ``grace_s``: the time between SIGTERM and SIGKILL for this kill, where
        the backend can choose it per kill (local); others use their own."""
        await asyncio.gather(*(self.kill_job(job) for job in jobs))

    async def mark_running(self, job: Job) -> None:
        """Record that a job started (once) and tell the plugins."""
        if job.advance(JobStatus.RUNNING):
            job.started_at = time.time()
            await self.hooks.acall("on_job_started", self, job)

    async def wait_done(self, job: Job) -> Observation | None:
        """Return when the job has left the backend (the default polls).

        The result is what the backend said about the end (None when only the
        job's files can tell), for ``job_result``.
        """
        return await self._poller.wait(job)

    def job_result(
        self, job: Job, observation: Observation | None = None
    ) -> tuple[int | None, JobOutcome, str | None]:
        """(rc, outcome, reason) of a job that left the backend.

        The wrapper's files come first; what the backend observed (a cluster's
        TIMEOUT, OUT_OF_MEMORY ...) wins when it is a failure the files cannot know.
        A plain FAILED from the backend adds nothing to an rc the wrapper wrote
        (the wrapper's own reason, e.g. its timeout, says more), and a LOST (the
        job left without an rc, as far as the backend saw) is contradicted by one.
        """
        obs = observation
        if obs is not None and obs.outcome is JobOutcome.SUCCEEDED:
            return obs.rc or 0, JobOutcome.SUCCEEDED, None  # nothing to read
        rc = job.read_rc_file()
        reason = job.read_info().get("reason")
        recorded = rc is not None
        if rc is None and obs is not None and obs.rc is not None:
            rc = obs.rc
        if (
            obs is not None
            and obs.outcome is not None
            and obs.outcome.is_failure
            and not (recorded and obs.outcome in (JobOutcome.FAILED, JobOutcome.LOST))
        ):
            return rc, obs.outcome, obs.reason or reason
        if rc is None:
            garbage = job.unreadable_rc()
            return (
                None,
                JobOutcome.LOST,
                (obs.reason if obs and obs.reason else None)
                or (
                    f"its {job.rc_file.name} holds no exit code: {garbage!r}"
                    if garbage is not None
                    else f"the job left {self.name} without writing {job.rc_file.name}"
                ),
            )
        if reason in _REASON_OUTCOMES:
            return rc, _REASON_OUTCOMES[reason], reason
        if rc == 0:
            return rc, JobOutcome.SUCCEEDED, reason
        if reason is None and isinstance(self.workdir, Path):  # say why, if so
            reason = filesystem_full(job.metadir)
        return rc, JobOutcome.FAILED, reason

    # ------------------------------------------------------------------ polling
    async def poll_jobs(self, jobs: Sequence[Job]) -> dict[Job, Observation]:
        """Look at all in-flight jobs at once. The seed version asks each job, and
        tells queued from running by the status the wrapper wrote."""
        running = await asyncio.gather(*(self.job_is_running(job) for job in jobs))
        out = {}
        for job, is_running in zip(jobs, running, strict=True):
            if not is_running:
                out[job] = GONE
            elif job.status >= JobStatus.RUNNING:
                out[job] = RUNNING
            else:
                out[job] = (
                    RUNNING if job.read_status_file() == JobStatus.RUNNING else PENDING
                )
        return out

    def gone_observation(self, job: Job) -> Observation | None:
        """How a job that left the backend without an rc file ended, when that is
        known without asking (None: ask ``resolve_gone``, then wait). A job xqute
        was killing was killed (a kill can land before the wrapper has set its
        traps, and then it writes nothing): no reason to wait ``lost_grace_s``."""
        if job.status is JobStatus.KILLING:
            return Observation("done", JobOutcome.CANCELLED, KILLED_BY_XQUTE)
        return None

    async def resolve_gone(self, jobs: Sequence[Job]) -> dict[Job, Observation]:
        """Jobs the backend no longer lists and that left no rc file: ask elsewhere
        (accounting). Return what is known; the rest wait, then count as lost."""
        return {}

    def lost_observation(self, job: Job) -> Observation:
        """How a job ended that stayed gone, without an rc file or an accounting
        record, for ``lost_grace_s``."""
        return Observation(
            "done",
            JobOutcome.LOST,
            f"the job left {self.name} and wrote no rc file within"
            f" {self.lost_grace_s:g}s",
        )


class SeedThroughEngineAPI:
    """The seed API answered by the engine API, for a backend whose ``kill_jobs``
    and ``poll_jobs`` handle many jobs with one command or call (mix it in
    before ``Scheduler``)."""

    async def kill_job(self: Scheduler, job: Job) -> None:
        await self.kill_jobs([job])

    async def job_is_running(self: Scheduler, job: Job) -> bool:
        observation = (await self.poll_jobs([job]))[job]
        return observation.state in ("pending", "running")


def _write_private(path: Path, text: str) -> None:
    """Write a file that only its owner may read (0600, an old one too)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fd, 0o600)
        fh.write(text)


def _files_failed(job: Job, exc: OSError) -> str:
    """Why a job's files could not be written: ``disk full: ...`` when so."""
    what = f"job {job.index} cannot write its files in {job.metadir}"
    return disk_full_reason(exc, what) if is_disk_full(exc) else f"{what}: {exc}"


def _positive(value: Any, name: str, *, zero_ok: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value < 0
        or (value == 0 and not zero_ok)
    ):
        what = "a number >= 0" if zero_ok else "a positive number"
        raise ConfigError(f"{name} {value!r} must be {what}")
    return float(value)
