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
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..errors import CommandFailed
from ..job import Job
from .base import Scheduler
from .command import CommandResult, run_command
from .poller import GONE, Observation

__all__ = ["BatchScheduler"]


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
    stale_trial_guard: ClassVar[bool] = True

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

    # ------------------------------------------------------------------ running
    async def run(self, argv: Sequence[str], check: bool = True) -> CommandResult:
        return await run_command(argv, timeout_s=self.command_timeout_s, check=check)

    async def submit_job(self, job: Job) -> str:
        script = await self.wrapped_job_script(job)
        result = await self.run(self.submit_argv(job, script))
        return self.parse_submit(result)

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
        ids = [j.jid for j in jobs if j.jid]
        for chunk in _chunks(ids, self.max_ids_per_command):
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
        for chunk in _chunks(list(by_id), self.max_ids_per_command):
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
        for chunk in _chunks(list(by_id), self.max_ids_per_command):
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


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
