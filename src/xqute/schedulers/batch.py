"""Backends driven by command-line tools: subclasses build argv and parse text.

A ``BatchScheduler`` subclass (Slurm, SGE, containers, Google Batch) says how to
submit one job, how to ask about many, how to kill many and how to read
accounting, as pure command builders and output parsers::

    submit_argv(job, script) -> argv      parse_submit(result) -> native id
    status_argv(ids) -> argv              parse_status(result, ids) -> {id: Observation}
    kill_argv(ids) -> argv                check_status / check_kill(result ...)
    accounting_argv(ids) -> argv | None   parse_accounting(result, ids) -> {id: Obs...}

The base runs them (``run_command``): one status command per poll cycle for all
in-flight jobs, one kill command for many jobs, accounting for jobs that left the
queue without an rc file (``accounting_ids_per_command`` ids per command,
``accounting_concurrency`` commands at once), and retries of submissions whose
failure matches ``transient_errors``. Builders and parsers do no I/O, so they are
unit-tested with output captured from the real tools.

Backends that set ``supports_arrays`` can also submit many jobs as one array job
(``scheduler_opts={"array": True}``, see ``arrays``): submissions arriving within
``array_window_s`` are gathered and submitted together. At most
``submit_concurrency`` submit commands run at once (a cluster controller on a
small machine chokes on 200 at once).

How a job ended is decided by ``xqute.outcome`` (rule 4 applies: a cluster
decides outcomes): a job xqute was killing that leaves without an rc file
(killed while queued, or by a SIGKILL no trap sees) ends with ``killed_rc``,
which the driver writes into its folder; what a cluster did to a job (cancelled
outside xqute, time limit, out of memory, node failure, preemption; or why it
could not run it) is written to the job's stderr, unless the cluster wrote its
own message there (``cluster_words``).

Extension points besides the builders: ``kill_ids_per_command`` /
``kill_concurrency`` / ``kill_timeout_s`` (one delete per job, at most N at
once, for as long as a ``stop`` waits), ``stage_submission(job)`` (files a
submit command reads, e.g. a job config), ``own_native_id`` /
``after_failed_submission`` (backends that name their jobs), and
``Scheduler.after_done`` (clean up once a job's end is known).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from .. import checks
from ..errors import BackendError, CommandFailed
from ..job import Job
from ..outcome import GONE, Observation, Seen
from ..status import JobStatus
from .arrays import ArrayBatcher, ArrayJobs
from .base import Scheduler
from .directives import merge_option
from .helpers.command import CommandResult, chunks, run_command

__all__ = ["BATCH_OPTIONS", "BatchScheduler"]

logger = logging.getLogger("xqute")

#: options of every batch backend (not passed to the batch tool)
BATCH_OPTIONS: dict[str, str] = {
    "array": "submit jobs fed together as one array job: true, or the most jobs"
    " per array (default false)",
    "array_window_s": "seconds to gather submissions into one array (default 0.1)",
    "submit_concurrency": "how many submit commands may run at once",
}


class BatchScheduler(ArrayJobs, Scheduler):
    """Base of backends whose jobs are driven through command-line tools."""

    #: tool name -> default executable; an option with the tool's name overrides
    #: it (``scheduler_opts={"sbatch": "/opt/slurm/bin/sbatch"}``)
    tools: ClassVar[dict[str, str]] = {}
    #: regexes (matched on a failed command's stderr) of failures worth retrying
    transient_errors: ClassVar[tuple[str, ...]] = ()
    #: the most native ids one status/kill/accounting command is given; more are
    #: split into several commands (command lines have a length limit)
    max_ids_per_command: ClassVar[int] = 1000
    #: the most ids one accounting command takes (qacct: 1), and how many such
    #: commands may run at once
    accounting_ids_per_command: ClassVar[int | None] = None  # max_ids_per_command
    accounting_concurrency: ClassVar[int] = 1
    #: seconds a tool may run before it is killed
    command_timeout_s: ClassVar[float] = 60.0
    #: whether ``status_argv`` asks about the given ids; False when it lists the
    #: whole run (qstat, a container engine's ps, Batch's list), which is then
    #: run once per cycle however many jobs are in flight
    status_takes_ids: ClassVar[bool] = True
    stale_trial_guard: ClassVar[bool] = True
    #: default of the ``submit_concurrency`` option (None: no limit of its own;
    #: the engine's ``submission_batch`` still applies)
    default_submit_concurrency: ClassVar[int | None] = None
    cluster_decides: ClassVar[bool] = True
    #: the most ids one kill command takes (Batch's delete: 1; None: as
    #: ``max_ids_per_command``), and how many kill commands may run at once
    kill_ids_per_command: ClassVar[int | None] = None
    kill_concurrency: ClassVar[int] = 1
    #: regexes (on stderr) meaning "this job exists already": a submission that
    #: timed out and was retried had reached the backend after all (only for
    #: backends that name their jobs, see ``own_native_id``)
    already_submitted_errors: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        concurrency = self.config.pop(
            "submit_concurrency", self.default_submit_concurrency
        )
        if concurrency is not None:
            checks.positive_int("submit_concurrency", concurrency)
        self._submit_slots = asyncio.Semaphore(concurrency) if concurrency else None
        self._attempted: set[str] = set()  # own ids whose submission failed
        self._killed_on_submit: set[str] = set()  # see _kill_doomed
        self.array_size = self.array_size_of(self.config.pop("array", False))
        window = checks.seconds(
            "array_window_s", self.config.pop("array_window_s", 0.1), zero_ok=True
        )
        self._batcher = (
            ArrayBatcher(self._submit_items, self._kill_ids, window, self.array_size)
            if self.array_size > 1
            else None
        )

    @classmethod
    def normalize_options(cls, opts: Mapping[str, Any]) -> dict[str, Any]:
        """Strip prefixes; two spellings of one option (``l`` and ``qsub_l``) are
        merged when lists, and an error when they are different scalars."""
        out: dict[str, Any] = {}
        for key, value in opts.items():
            ((name, item),) = super().normalize_options({key: value}).items()
            merge_option(out, name, item, key)
        return out

    def validate_options(self, opts: dict[str, Any]) -> dict[str, Any]:
        """The batch options (``array`` ...) and the tools' names (a path for a
        tool) are known to every batch backend."""
        own = {
            k: opts.pop(k) for k in list(opts) if k in BATCH_OPTIONS or k in self.tools
        }
        return {**super().validate_options(opts), **own}

    def tool(self, name: str) -> str:
        return str(self.config.get(name, self.tools[name]))

    def backend_config(self) -> dict[str, Any]:
        """The options that are not tool paths (for directives, flags ...)."""
        return {k: v for k, v in self.config.items() if k not in self.tools}

    # ------------------------------------------------------------------ builders
    def submit_argv(self, job: Job, script: Path) -> list[str]:
        raise NotImplementedError

    def parse_submit(self, result: CommandResult) -> str:
        raise NotImplementedError

    def status_argv(self, native_ids: Sequence[str]) -> list[str]:
        raise NotImplementedError

    def check_status(self, result: CommandResult) -> None:
        """Raise ``CommandFailed`` when the status command failed (its output then
        says nothing about the jobs)."""
        if result.rc != 0:
            raise CommandFailed(result.argv, result.rc, result.stdout, result.stderr)

    def parse_status(
        self, result: CommandResult, native_ids: Sequence[str]
    ) -> dict[str, Observation]:
        """Observations by native id; an id the output does not mention is gone."""
        raise NotImplementedError

    def kill_argv(self, native_ids: Sequence[str]) -> list[str]:
        raise NotImplementedError

    def check_kill(self, result: CommandResult, native_ids: Sequence[str]) -> None:
        """Raise ``CommandFailed`` when the kill command failed (killing a job
        that just ended is not a failure)."""
        if result.rc != 0:
            raise CommandFailed(result.argv, result.rc, result.stdout, result.stderr)

    def accounting_argv(self, native_ids: Sequence[str]) -> list[str] | None:
        """None: the backend keeps no accounting."""
        return None

    def parse_accounting(
        self, result: CommandResult, native_ids: Sequence[str]
    ) -> dict[str, Observation]:
        return {}

    # ------------------------------------------------------------------ running
    async def run(self, argv: Sequence[str], check: bool = True) -> CommandResult:
        return await run_command(argv, timeout_s=self.command_timeout_s, check=check)

    def _submit_slot(self) -> Any:
        if self._submit_slots is None:
            return contextlib.nullcontext()
        return self._submit_slots

    async def submit_job(self, job: Job) -> str:
        script = await self.wrapped_job_script(job)
        if self._batcher is not None:
            return await self._batcher.submit(self.array_key(job), job, script)
        (native_id,) = await self._submit_items([(job, script)])
        return native_id

    async def _submit_items(self, items: Sequence[tuple[Job, Path]]) -> list[str]:
        """Submit one job, or several as one array. The engine kills a job that
        was killed while its submission was under way; for an array, those are
        killed here with one command instead of one per job."""
        if len(items) == 1:
            return [await self._submit_single(*items[0])]
        ids = await self.submit_array(items)
        await self._kill_doomed([job for job, _ in items], ids)
        return ids

    async def _kill_doomed(self, jobs: Sequence[Job], ids: Sequence[str]) -> None:
        """Kill, with one command, the jobs killed (halt, signal) while their
        submission was under way. The caller's own kill of such a job, which
        follows, is then skipped (``kill_jobs``)."""
        doomed = [
            (job, native_id)
            for job, native_id in zip(jobs, ids, strict=True)
            if job.status is JobStatus.KILLING
        ]
        if not doomed:
            return
        for job, native_id in doomed:
            job.jid = native_id
        try:
            await self.kill_jobs([job for job, _ in doomed])
        except (BackendError, OSError) as exc:
            logger.warning(
                "%s: killing %d job(s) failed: %s", self.name, len(doomed), exc
            )
            return
        self._killed_on_submit.update(native_id for _, native_id in doomed)

    async def _submit_single(self, job: Job, script: Path) -> str:
        own_id = self.own_native_id(job)
        async with self._submit_slot():
            try:
                with self.stage_submission(job):
                    result = await self.run(self.submit_argv(job, script))
            except CommandFailed as exc:
                if own_id is None:
                    raise
                if own_id in self._attempted and any(
                    re.search(p, exc.stderr, re.IGNORECASE)
                    for p in self.already_submitted_errors
                ):
                    # an earlier attempt (it timed out) had reached the backend
                    self._attempted.discard(own_id)
                    return own_id
                self._attempted.add(own_id)
                await self.after_failed_submission(job, own_id)
                raise
        self._attempted.discard(own_id)
        return own_id if own_id is not None else self.parse_submit(result)

    def stage_submission(self, job: Job) -> contextlib.AbstractContextManager[Any]:
        """A context the submit command of ``job`` runs in: put in place what
        the command reads (a job config file) and remove it after; code after
        the ``yield`` runs only when the submission worked."""
        return contextlib.nullcontext()

    def own_native_id(self, job: Job) -> str | None:
        """The native id, when the backend names a job itself (a container's
        name, a Batch job's id) rather than learning it from the submit output."""
        return None

    async def after_failed_submission(self, job: Job, native_id: str) -> None:
        """Clean up what a failed submission may have left (a created container)."""

    async def aclose(self) -> None:
        if self._batcher is not None:
            await self._batcher.aclose()
        await super().aclose()

    def is_transient(self, exc: BaseException) -> bool:
        """A submit command that timed out may have reached the backend: it is
        retried only where a retry can tell (``already_submitted_errors``); else
        the job fails rather than run twice, the copy unseen by xqute."""
        if not isinstance(exc, CommandFailed):
            return isinstance(exc, OSError | TimeoutError)
        if exc.rc is None:  # the tool timed out
            return bool(self.already_submitted_errors)
        return any(
            re.search(p, exc.stderr, re.IGNORECASE) for p in self.transient_errors
        )

    async def kill_job(self, job: Job) -> None:
        await self.kill_jobs([job])

    async def kill_jobs(
        self, jobs: Sequence[Job], grace_s: float | None = None
    ) -> None:
        ids = [j.jid for j in jobs if j.jid]
        fresh = [i for i in ids if i not in self._killed_on_submit]
        self._killed_on_submit.difference_update(ids)
        await self._kill_ids(fresh)

    async def _kill_ids(self, ids: Sequence[str]) -> None:
        """``kill_argv`` for ``kill_ids_per_command`` ids at a time, at most
        ``kill_concurrency`` commands at once, each given ``kill_timeout_s``;
        the first failure (``check_kill``) is raised once all have run."""
        slots = asyncio.Semaphore(self.kill_concurrency)

        async def kill(chunk: list[str]) -> CommandFailed | None:
            async with slots:
                argv, limit_s = self.kill_argv(chunk), self.kill_timeout_s()
                if limit_s is None:
                    result = await self.run(argv, check=False)
                else:
                    result = await run_command(argv, timeout_s=limit_s, check=False)
            try:
                self.check_kill(result, chunk)
            except CommandFailed as exc:
                return exc
            return None

        size = self.kill_ids_per_command or self.max_ids_per_command
        failures = await asyncio.gather(*map(kill, chunks(ids, size)))
        failure = next((f for f in failures if f is not None), None)
        if failure is not None:
            raise failure

    def kill_timeout_s(self) -> float | None:
        """How long one kill command may run (a ``stop`` that waits for the
        jobs' grace needs longer); None: ``command_timeout_s``, like any tool."""
        return None

    async def job_is_running(self, job: Job) -> bool:
        observation = (await self.poll_jobs([job]))[job]
        return observation.state in (Seen.PENDING, Seen.RUNNING)

    async def poll_jobs(self, jobs: Sequence[Job]) -> dict[Job, Observation]:
        by_id = {j.jid: j for j in jobs if j.jid}
        seen: dict[str, Observation] = {}
        groups = (
            chunks(list(by_id), self.max_ids_per_command)
            if self.status_takes_ids
            else [list(by_id)]
        )
        for chunk in groups:
            result = await self.run(self.status_argv(chunk), check=False)
            self.check_status(result)
            seen.update(self.parse_status(result, chunk))
        return {job: seen.get(jid, GONE) for jid, job in by_id.items()}

    async def resolve_gone(self, jobs: Sequence[Job]) -> dict[Job, Observation]:
        by_id = {j.jid: j for j in jobs if j.jid}
        size = self.accounting_ids_per_command or self.max_ids_per_command
        groups = chunks(list(by_id), size)
        argvs = [self.accounting_argv(ids) for ids in groups]
        if not groups or None in argvs:
            return {}
        slots = asyncio.Semaphore(self.accounting_concurrency)

        async def ask(ids: list[str], argv: Any) -> dict[str, Observation]:
            async with slots:
                result = await self.run(argv, check=False)
            return self.parse_accounting(result, ids)

        found: dict[str, Observation] = {}
        for part in await asyncio.gather(*map(ask, groups, argvs)):
            found.update(part)
        return {
            by_id[i]: obs
            for i, obs in found.items()
            if i in by_id and obs.state is Seen.DONE
        }
