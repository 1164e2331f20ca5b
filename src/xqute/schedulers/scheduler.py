"""xqute 2.x's scheduler surface over this codebase's backends.

xqute 2.x's clients (pipen, and pipen's scheduler plugins) import
``xqute.schedulers.<name>_scheduler.<Name>Scheduler`` and
``xqute.schedulers.scheduler.Scheduler`` and use them the 2.x way:

- ``await scheduler.create_job(index, cmd)`` is a coroutine; it runs
  ``post_init()`` once, makes a ``job_class`` instance whose folder exists, and
  may get an empty ``cmd`` that the client sets later;
- ``scheduler.workdir`` is a ``SpecPath``: ``.mounted`` is where jobs see it
  (``mounted_workdir=``); clients replace it after the constructor
  (``self.workdir = self.workdir / proc.name``);
- ``subm_batch`` is the submission batch (default 8); any option the backend
  does not know is kept in ``self.config`` rather than refused (2.x passed them
  on: a Slurm option becomes an ``#SBATCH`` line);
- ``cwd`` (the jobs' working directory), ``timeout``, ``prescript`` and
  ``postscript`` (bash run before and after the command) are options of every
  scheduler; ``recheck_interval`` is accepted and has nothing to tune here (the
  poller asks the backend about every in-flight job each cycle).

``SchedulerV2`` adds exactly that to a backend of this codebase, which does the
rest (submitting, following, killing, retrying jobs, the wrapped script), so
pipen's jobs run on the same engine as everyone else's.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from .. import defaults
from ..job import Job
from ..path import SpecPath
from ..status import JobErrorStrategy
from .base import Scheduler as _Base

__all__ = ["Scheduler", "SchedulerV2"]


class SchedulerV2:
    """Mix in before a backend class: ``class X(SchedulerV2, LocalScheduler)``."""

    #: the default submission batch of 2.x schedulers
    submission_batch: int = defaults.DEFAULT_SUBMISSION_BATCH
    #: 2.x kept options it did not know in ``config``
    backend_options: ClassVar[None] = None

    def __init__(
        self,
        workdir: Any = None,
        forks: int = 1,
        error_strategy: str = defaults.DEFAULT_ERROR_STRATEGY,
        num_retries: int = defaults.DEFAULT_NUM_RETRIES,
        prescript: str = "",
        postscript: str = "",
        jobname_prefix: str | None = None,
        submission_batch: int | None = None,
        recheck_interval: int = 60,
        cwd: str | os.PathLike[str] | None = None,
        timeout: float = 0,
        mounted_workdir: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.prescript = prescript
        self.postscript = postscript
        self.recheck_interval = recheck_interval
        self.cwd = None if cwd is None else str(cwd)
        self._mounted_workdir = mounted_workdir
        self._post_init_called = False
        self._made: set[int] = set()  # indices create_job made (fed or not)
        if timeout:
            kwargs["timeout"] = timeout
        super().__init__(  # type: ignore[call-arg]
            workdir or f"./{defaults.DEFAULT_WORKDIR_NAME}",
            forks,
            error_strategy,
            num_retries,
            jobname_prefix or self.name,  # type: ignore[attr-defined]
            submission_batch or type(self).submission_batch,
            **kwargs,
        )

    def unfed_job_indices(self) -> set[int]:
        """Every job ``create_job`` made: a client (pipen) feeds only the jobs it
        must run, and the folders of the others (cached) are this run's."""
        return self._made

    @property
    def subm_batch(self) -> int:
        """2.x's name of the submission batch."""
        return self.submission_batch

    def make_workdir_path(self, workdir: Any) -> SpecPath:
        """The workdir as a SpecPath: where the driver sees it, and (``.mounted``)
        where jobs see it."""
        if isinstance(workdir, SpecPath) and self._mounted_workdir is None:
            return workdir
        path = str(workdir)
        if "://" not in path:
            path = os.path.abspath(os.path.expanduser(path))
        return SpecPath(path, mounted=self._mounted_workdir)

    def script_paths(self, job: Job) -> tuple[str, str]:
        """(workdir, job metadir) as the job sees them."""
        metadir = job.metadir
        mounted = metadir.mounted if isinstance(metadir, SpecPath) else metadir
        return str(self.workdir.mounted), str(mounted)  # type: ignore[attr-defined]

    def script_snippets(self, job: Job) -> tuple[list[str], list[str], list[str]]:
        """The plugins' snippets, ``prescript`` first before the command and
        ``postscript`` first after it (2.x's order)."""
        init, prep, end = super().script_snippets(job)  # type: ignore[misc]
        return init, [self.prescript, *prep], [self.postscript, *end]

    async def start(self) -> None:
        await self.ensure_post_init()
        await super().start()  # type: ignore[misc]

    async def ensure_post_init(self) -> None:
        if not self._post_init_called:
            await self.post_init()
            self._post_init_called = True

    async def post_init(self) -> None:
        """Set-up that needs awaiting, run once before the first job is made
        (2.x's hook; the container and gbatch schedulers resolve mounts here)."""

    async def create_job(
        self, index: int, cmd: Any, envs: Any = None, **kw: Any
    ) -> Job:
        """A ``job_class`` job whose folder exists (2.x's coroutine). An empty
        ``cmd`` is a job that runs nothing until the caller gives it one."""
        await self.ensure_post_init()
        kw.setdefault("cwd", self.cwd)
        job = super().create_job(index, cmd, envs, **kw)  # type: ignore[misc]
        job._error_retry = self.error_strategy is JobErrorStrategy.RETRY  # type: ignore[attr-defined]
        job._num_retries = self.num_retries  # type: ignore[attr-defined]
        self._made.add(index)
        await self.file_io(job.metadir.mkdir, 0o777, True, True)  # type: ignore[attr-defined]
        return job


class Scheduler(SchedulerV2, _Base):
    """The base of scheduler plugins written for xqute 2.x (pipen's
    ``pipen_sched`` entry point): implement ``submit_job``, ``kill_job`` and
    ``job_is_running``, and use ``await self.wrapped_job_script(job)``, as the
    seed way describes."""
