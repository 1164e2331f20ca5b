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

from .. import checks
from ..errors import ConfigError
from ..hooks import HookCaller
from ..job import Job
from ..outcome import (
    GONE,
    KILLED_BY_XQUTE,
    PENDING,
    RUNNING,
    Ending,
    Observation,
    decide,
    gone_end,
    lost_end,
    read_end,
)
from ..resources import Resources
from ..script import render_wrapped_script
from ..status import JobErrorStrategy, JobOutcome, JobStatus
from ..units import parse_duration_s
from .ends import end_of
from .helpers.files import write_private
from .poller import Poller
from .submission import submit

__all__ = ["KILLED_BY_XQUTE", "Observation", "Scheduler"]

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
    #: a batch cluster decides how jobs end (rule 4 of ``xqute.outcome``):
    #: a failure is refined by ``cluster_words``, noted in the job's stderr,
    #: and a job xqute killed that left no rc gets ``killed_rc``
    cluster_decides: ClassVar[bool] = False
    killed_rc: ClassVar[int | None] = None
    #: poll intervals when the options give none: a backend whose status
    #: command is slow (gcloud) polls less often, a fast one (the queue) more
    default_poll_interval_s: ClassVar[float] = 1.0
    default_poll_interval_max_s: ClassVar[float] = 10.0

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
        interval = opts.pop("poll_interval_s", self.default_poll_interval_s)
        self.poll_interval_s = checks.seconds("poll_interval_s", interval)
        longest = opts.pop("poll_interval_max_s", self.default_poll_interval_max_s)
        self.poll_interval_max_s = max(
            self.poll_interval_s, checks.seconds("poll_interval_max_s", longest)
        )
        self.kill_grace_s = checks.seconds(
            "kill_grace_s", opts.pop("kill_grace_s", 5.0)
        )
        self.lost_grace_s = checks.seconds(
            "lost_grace_s", opts.pop("lost_grace_s", 30.0)
        )
        retries = opts.pop("submit_retries", 3)
        self.submit_retries = checks.positive_int("submit_retries", retries, 0)
        self.config: dict[str, Any] = self.validate_options(opts)
        self._poller = Poller(self)

    # ------------------------------------------------------------------ options
    @classmethod
    def for_options(cls, opts: Mapping[str, Any]) -> type[Scheduler]:
        """The class that runs jobs with these options (``make_scheduler``):
        this one, unless an option picks a member of a family (``container``
        with ``bin="apptainer"`` is ``ApptainerScheduler``)."""
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

    def unfed_job_indices(self) -> set[int]:
        """Indices of jobs made for this run but not fed to the engine: their
        folders are this run's too, not an older run's (a 2.x client, pipen,
        makes every job with ``create_job`` and feeds only those not cached)."""
        return set()

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
            write_private(path, text)  # it holds the job's environment
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
        """Submit with retries of transient failures; record the native id
        (``submission.submit``)."""
        await submit(self, job)

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
        """Return when the job has left the backend (the default polls), then
        ``after_done``. The result is what the backend said about the end (None
        when only the job's files can tell), for ``ending``."""
        observation = await self._poller.wait(job)
        await self.after_done(job, observation)
        return observation

    async def after_done(self, job: Job, observation: Observation | None) -> None:
        """The job has left the backend (its outcome is not decided yet): save
        or clean up what the backend keeps of it (a container, its logs)."""

    def ending(self, job: Job, observation: Observation | None = None) -> Ending:
        """How a job that left the backend ended: ``xqute.outcome.decide`` over
        what the backend observed (``wait_done``'s result) and the job's files."""
        return end_of(self, job, observation, decide)

    def job_result(
        self, job: Job, observation: Observation | None = None
    ) -> tuple[int | None, JobOutcome, str | None]:
        """(rc, outcome, reason) as the backend and the job's files tell, before
        xqute names its own kills (``outcome.read_end``)."""
        end = end_of(self, job, observation, read_end)
        return end.rc, end.outcome, end.reason

    def cluster_words(self, job: Job) -> tuple[str | None, bool]:
        """What a batch cluster wrote in a failed job's files: (its words about
        a memory kill, or None; whether it explained the end there itself)."""
        return None, False

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
        return gone_end(job.status is JobStatus.KILLING)

    async def resolve_gone(self, jobs: Sequence[Job]) -> dict[Job, Observation]:
        """Jobs the backend no longer lists and that left no rc file: ask elsewhere
        (accounting). Return what is known; the rest wait, then count as lost."""
        return {}

    def lost_observation(self, job: Job) -> Observation:
        """How a job ended that stayed gone, without an rc file or an accounting
        record, for ``lost_grace_s``."""
        return lost_end(self.name, self.lost_grace_s)
