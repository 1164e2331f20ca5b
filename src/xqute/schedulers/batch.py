"""Backends driven by command-line tools: subclasses build argv and parse text.

A ``BatchScheduler`` subclass (Slurm, SGE, containers, Google Batch) says how to
submit one job, how to ask about many, how to kill many and how to read
accounting, as pure command builders and output parsers::

    submit_argv(job, script) -> argv      parse_submit(result) -> native id
    status_argv(ids) -> argv              parse_status(result, ids) -> {id: Observation}
    kill_argv(ids) -> argv
    accounting_argv(ids) -> argv | None   parse_accounting(result, ids) -> {id: Obs...}

The base runs them (``run_command``): one status command per poll cycle for all
in-flight jobs, one kill command for many jobs, accounting for jobs that left the
queue without an rc file, and retries of submissions whose failure matches
``transient_errors``. Builders and parsers do no I/O, so they are unit-tested
with output captured from the real tools.

Backends that set ``supports_arrays`` can also submit many jobs as one array job
(``scheduler_opts={"array": True}``): submissions arriving within
``array_window_s`` are gathered (``arrays.ArrayBatcher``) and handed to
``submit_array``, which writes a small array script that runs task N's own
wrapped script; the backend builds its argv (``array_submit_argv``) and parses
the ids (``parse_array_submit``). At most ``submit_concurrency`` submit commands
run at once (a cluster controller on a small machine chokes on 200 at once).

What a cluster did to a job (cancelled outside xqute, time limit, out of memory,
node failure, preemption; or why it could not run it) is also written to the
job's stderr, unless the cluster wrote its own message there
(``cluster_wrote_message``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..errors import CommandFailed, ConfigError
from ..job import Job
from ..status import JobOutcome, JobStatus
from .arrays import ArrayBatcher
from .base import Scheduler
from .command import CommandResult, chunks, run_command
from .directives import merge_option
from .poller import GONE, Observation

__all__ = ["BATCH_OPTIONS", "BatchScheduler"]

#: options of every batch backend (not passed to the batch tool)
BATCH_OPTIONS: dict[str, str] = {
    "array": "submit jobs fed together as one array job: true, or the most jobs"
    " per array (default false)",
    "array_window_s": "seconds to gather submissions into one array (default 0.1)",
    "submit_concurrency": "how many submit commands may run at once",
}
#: outcomes decided by the cluster, noted in the job's stderr
CLUSTER_OUTCOMES = frozenset(
    {
        JobOutcome.CANCELLED,
        JobOutcome.TIMEOUT,
        JobOutcome.OUT_OF_MEMORY,
        JobOutcome.NODE_FAILURE,
        JobOutcome.PREEMPTED,
    }
)


class BatchScheduler(Scheduler):
    """Base of backends whose jobs are driven through command-line tools."""

    #: tool name -> default executable; an option with the tool's name overrides
    #: it (``scheduler_opts={"sbatch": "/opt/slurm/bin/sbatch"}``)
    tools: ClassVar[dict[str, str]] = {}
    #: regexes (matched on a failed command's stderr) of failures worth retrying
    transient_errors: ClassVar[tuple[str, ...]] = ()
    #: the most native ids one status/kill/accounting command is given; more are
    #: split into several commands (command lines have a length limit)
    max_ids_per_command: ClassVar[int] = 1000
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
    #: whether ``submit_array`` and its builders are implemented
    supports_arrays: ClassVar[bool] = False
    #: the most tasks one array may have (Slurm's default MaxArraySize is 1001)
    max_array_size: ClassVar[int] = 1000
    #: the environment variable holding the task id inside an array task
    array_task_env: ClassVar[str] = ""
    #: the rc given to a job xqute killed that left none (e.g. killed while
    #: queued); None leaves it unknown
    killed_rc: ClassVar[int | None] = None
    #: note what the cluster did in the job's stderr (see ``job_result``)
    note_outcomes_in_stderr: ClassVar[bool] = True
    #: regexes (on stderr) meaning "this job exists already": a submission that
    #: timed out and was retried had reached the backend after all (only for
    #: backends that name their jobs, see ``own_native_id``)
    already_submitted_errors: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        concurrency = self.config.pop(
            "submit_concurrency", self.default_submit_concurrency
        )
        if concurrency is not None and (
            isinstance(concurrency, bool)
            or not isinstance(concurrency, int)
            or concurrency < 1
        ):
            raise ConfigError(
                f"submit_concurrency {concurrency!r} must be an integer >= 1"
            )
        self._submit_slots = asyncio.Semaphore(concurrency) if concurrency else None
        self._attempted: set[str] = set()  # own ids whose submission failed
        self.array_size = self._array_size(self.config.pop("array", False))
        window = self.config.pop("array_window_s", 0.1)
        if (
            isinstance(window, bool)
            or not isinstance(window, int | float)
            or window < 0
        ):
            raise ConfigError(f"array_window_s {window!r} must be a number >= 0")
        self._batcher = (
            ArrayBatcher(
                self.submit_array, self._kill_ids, float(window), self.array_size
            )
            if self.array_size > 1
            else None
        )

    def _array_size(self, value: Any) -> int:
        if value is False or value is None or value == 0:
            return 0
        if not self.supports_arrays:
            raise ConfigError(f"the {self.name} scheduler cannot submit array jobs")
        limit = min(self.submission_batch, self.max_array_size)
        if value is True:
            return limit
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ConfigError(
                f"array {value!r} must be true, false or the most jobs per array (>= 2)"
            )
        return min(value, limit)

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
        """The batch options (``array`` ...) are known to every batch backend."""
        own = {k: opts.pop(k) for k in list(opts) if k in BATCH_OPTIONS}
        return {**super().validate_options(opts), **own}

    def tool(self, name: str) -> str:
        value = self.config.get(name, self.tools[name])
        return str(value)

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

    def parse_status(
        self, result: CommandResult, native_ids: Sequence[str]
    ) -> dict[str, Observation]:
        """Observations by native id; an id the output does not mention is gone."""
        raise NotImplementedError

    def status_ok_rcs(self) -> tuple[int, ...]:
        """Exit codes of the status command that still carry parseable output
        (``squeue`` exits 1 when one of the ids is unknown)."""
        return (0,)

    def kill_argv(self, native_ids: Sequence[str]) -> list[str]:
        raise NotImplementedError

    def kill_ok_rcs(self) -> tuple[int, ...]:
        """Exit codes of the kill command that are not failures (killing a job
        that just ended is not an error)."""
        return (0,)

    def accounting_argv(self, native_ids: Sequence[str]) -> list[str] | None:
        return None

    def parse_accounting(
        self, result: CommandResult, native_ids: Sequence[str]
    ) -> dict[str, Observation]:
        return {}

    # ------------------------------------------------------------------ arrays
    def array_key(self, job: Job) -> Hashable:
        """Jobs with equal keys may share an array (same directives)."""
        return None

    def array_task_ids(self, count: int) -> list[int]:
        """The task ids of an array of ``count`` jobs (Slurm from 0, SGE from 1)."""
        return list(range(count))

    def array_header(self, jobs: Sequence[Job], array_dir: Path) -> list[str]:
        """Directive lines of the array script (name, task files, throttle ...)."""
        raise NotImplementedError

    def array_submit_argv(self, jobs: Sequence[Job], script: Path) -> list[str]:
        raise NotImplementedError

    def parse_array_submit(
        self, result: CommandResult, task_ids: list[int]
    ) -> list[str]:
        """The native id of each task, in order."""
        raise NotImplementedError

    def array_task_file(self, array_dir: Path, task: int, name: str) -> Path:
        """Where the cluster writes task ``task``'s ``name`` (stdout/stderr): a
        symlink to the job's own file, so that what the cluster writes (e.g.
        Slurm's "CANCELLED DUE TO TIME LIMIT") lands in the job's folder."""
        return array_dir / f"{task}.{name}"

    def array_script_text(
        self, jobs: Sequence[Job], scripts: Sequence[Path], array_dir: Path
    ) -> str:
        tasks = self.array_task_ids(len(jobs))
        lines = ["#!/usr/bin/env bash", *self.array_header(jobs, array_dir)]
        lines.append(
            f"# xqute array of {len(jobs)} jobs ({self.name}):"
            " each task runs its own job's wrapped script"
        )
        lines.append(f"_xq_first={tasks[0]}")
        lines.append("_xq_scripts=(")
        lines.extend(f"    {shlex.quote(str(s))}" for s in scripts)
        lines.append(")")
        env = self.array_task_env
        lines.append(f'exec bash "${{_xq_scripts[${env} - _xq_first]}}"')
        return "\n".join(lines) + "\n"

    async def submit_array(self, items: Sequence[tuple[Job, Path]]) -> list[str]:
        """Submit gathered jobs (their wrapped scripts are written) as one array."""
        if len(items) == 1:
            return [await self._submit_single(*items[0])]
        jobs = [job for job, _ in items]
        array_dir = self.workdir / ".arrays" / f"{jobs[0].index}-{os.urandom(3).hex()}"
        array_dir.mkdir(parents=True)
        tasks = self.array_task_ids(len(jobs))
        for job, task in zip(jobs, tasks, strict=True):
            for name, target in (
                ("stdout", job.stdout_file),
                ("stderr", job.stderr_file),
            ):
                os.symlink(target, self.array_task_file(array_dir, task, name))
        script = array_dir / f"array.{self.name}"
        script.write_text(
            self.array_script_text(jobs, [s for _, s in items], array_dir)
        )
        async with self._submit_slot():
            result = await self.run(self.array_submit_argv(jobs, script))
        return self.parse_array_submit(result, tasks)

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
            native_id = await self._batcher.submit(self.array_key(job), job, script)
        else:
            native_id = await self._submit_single(job, script)
        if job.status is JobStatus.KILLING:
            # killed (halt, signal) while its submission was under way
            job.jid = native_id
            await self.kill_jobs([job])
        return native_id

    async def _submit_single(self, job: Job, script: Path) -> str:
        own_id = self.own_native_id(job)
        async with self._submit_slot():
            try:
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
        if not isinstance(exc, CommandFailed):
            return isinstance(exc, OSError | TimeoutError)
        if exc.rc is None:  # the tool timed out
            return True
        return any(
            re.search(p, exc.stderr, re.IGNORECASE) for p in self.transient_errors
        )

    async def kill_job(self, job: Job) -> None:
        await self.kill_jobs([job])

    async def kill_jobs(self, jobs: Sequence[Job]) -> None:
        await self._kill_ids([j.jid for j in jobs if j.jid])

    async def _kill_ids(self, ids: Sequence[str]) -> None:
        for chunk in chunks(list(ids), self.max_ids_per_command):
            result = await self.run(self.kill_argv(chunk), check=False)
            if result.rc not in self.kill_ok_rcs():
                raise CommandFailed(
                    result.argv, result.rc, result.stdout, result.stderr
                )

    async def job_is_running(self, job: Job) -> bool:
        observation = (await self.poll_jobs([job]))[job]
        return observation.state in ("pending", "running")

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
            if result.rc not in self.status_ok_rcs():
                raise CommandFailed(
                    result.argv, result.rc, result.stdout, result.stderr
                )
            seen.update(self.parse_status(result, chunk))
        return {job: seen.get(jid, GONE) for jid, job in by_id.items()}

    async def resolve_gone(self, jobs: Sequence[Job]) -> dict[Job, Observation]:
        by_id = {j.jid: j for j in jobs if j.jid}
        if not by_id or self.accounting_argv(list(by_id)) is None:
            return {}
        found: dict[str, Observation] = {}
        for chunk in chunks(list(by_id), self.max_ids_per_command):
            argv = self.accounting_argv(chunk)
            if argv is None:
                break
            result = await self.run(argv, check=False)
            found.update(self.parse_accounting(result, chunk))
        return {
            by_id[i]: obs
            for i, obs in found.items()
            if i in by_id and obs.state == "done"
        }

    # ------------------------------------------------------------------ results
    def job_result(
        self, job: Job, observation: Observation | None = None
    ) -> tuple[int | None, JobOutcome, str | None]:
        """The base's result, plus: a job xqute killed gets ``killed_rc`` when it
        left no rc (it never started), and an outcome the cluster decided is
        noted in the job's stderr when the cluster wrote nothing there."""
        rc, outcome, reason = super().job_result(job, observation)
        killing = job.status is JobStatus.KILLING
        if killing and outcome.is_failure and outcome is not JobOutcome.TIMEOUT:
            # the cluster saw a cancel; it was ours (the engine says KILLED)
            reason = "killed by xqute"
            if rc is None and self.killed_rc is not None:
                rc = self.killed_rc
        if (
            self.note_outcomes_in_stderr
            and not killing
            and outcome.is_failure
            and observation is not None
            and observation.outcome is outcome
            and observation.reason
            and (outcome in CLUSTER_OUTCOMES or rc is None)
            and not self.cluster_wrote_message(job, outcome)
        ):
            job.append_stderr(f"xqute: {self.name}: {outcome.value}: {reason}\n")
        return rc, outcome, reason

    def cluster_wrote_message(self, job: Job, outcome: JobOutcome) -> bool:
        """Whether the cluster already explained ``outcome`` in the job's stderr."""
        return False
