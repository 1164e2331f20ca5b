"""Array jobs: gathering submissions into one, and reading array task ids.

With ``scheduler_opts={"array": True}`` a batch backend submits the jobs whose
submissions arrive within a short window (``array_window_s``) as ONE array job,
up to ``array`` (or the engine's submission batch) jobs per array. Each array
task runs its own job's wrapped script, so every job keeps its own folder, rc,
status and retries: a retried job is simply submitted again and lands in a later
array (or alone, as a plain job). Jobs whose directives differ (e.g. different
resources) never share an array: they are gathered by a key.

The engine submits up to ``submission_batch`` jobs at once (default: forks), so
a window can never gather more than that; the batcher flushes as soon as a group
reaches its size limit instead of waiting the window out.

``ArrayJobs`` is the array half of ``BatchScheduler``: the builders a backend
that sets ``supports_arrays`` implements, and ``submit_array``, which writes a
small array script running task N's own wrapped script and submits it.

Task id ranges are parsed here too (SGE lists tasks as ``2,3`` or ``1-4:1``;
Slurm's folded ids, ``297_[2-3%1]``, are read in ``slurm/parse.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..errors import ConfigError
from ..job import Job
from .helpers.command import CommandResult

__all__ = ["ArrayBatcher", "ArrayJobs", "expand_ranges"]

_RANGE = re.compile(r"^(\d+)(?:-(\d+)(?::(\d+))?)?$")

#: submit_many(items) -> native ids, one per item, in order
SubmitMany = Callable[[Sequence[tuple[Job, Path]]], Awaitable[list[str]]]
#: kill_ids(native ids): kill what was submitted for a caller that went away
KillIds = Callable[[Sequence[str]], Awaitable[None]]


def expand_ranges(spec: str) -> list[int]:
    """``"1,3-5"`` -> [1, 3, 4, 5]; ``"1-7:2"`` -> [1, 3, 5, 7]; a ``%N``
    throttle suffix is ignored. Unparseable parts are skipped."""
    spec = spec.split("%", 1)[0]
    out: list[int] = []
    for part in spec.split(","):
        match = _RANGE.match(part.strip())
        if not match:
            continue
        first = int(match[1])
        last = int(match[2]) if match[2] else first
        step = int(match[3]) if match[3] else 1
        out.extend(range(first, last + 1, max(step, 1)))
    return out


@dataclass
class _Group:
    items: list[tuple[Job, Path, asyncio.Future[str]]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class ArrayBatcher:
    """Gathers jobs submitted within ``window_s`` into groups of ``max_size``."""

    def __init__(
        self,
        submit_many: SubmitMany,
        kill_ids: KillIds,
        window_s: float,
        max_size: int,
    ) -> None:
        self._submit_many = submit_many
        self._kill_ids = kill_ids
        self.window_s = window_s
        self.max_size = max_size
        self._groups: dict[Hashable, _Group] = {}
        self._flushes: set[asyncio.Task[None]] = set()

    async def submit(self, key: Hashable, job: Job, script: Path) -> str:
        """Return the job's native id once its group has been submitted."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
            group.timer = loop.call_later(self.window_s, self._flush, key)
        group.items.append((job, script, future))
        if len(group.items) >= self.max_size:
            self._flush(key)
        try:
            return await future
        except asyncio.CancelledError:
            if group.items and self._groups.get(key) is group:
                # not submitted yet: leave the group
                group.items = [it for it in group.items if it[2] is not future]
            raise

    def _flush(self, key: Hashable) -> None:
        group = self._groups.pop(key, None)
        if group is None:
            return
        if group.timer is not None:
            group.timer.cancel()
        items = [it for it in group.items if not it[2].done()]
        if not items:
            return
        task = asyncio.ensure_future(self._submit(items))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _submit(self, items: list[tuple[Job, Path, asyncio.Future[str]]]) -> None:
        try:
            ids = await self._submit_many([(job, script) for job, script, _ in items])
        except BaseException as exc:
            for _, _, future in items:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        orphans = []
        for (_, _, future), native_id in zip(items, ids, strict=True):
            if future.done():  # its submitter was cancelled meanwhile
                orphans.append(native_id)
            else:
                future.set_result(native_id)
        if orphans:
            with contextlib.suppress(Exception):
                await self._kill_ids(orphans)

    async def aclose(self) -> None:
        """Submit nothing more; wait for submissions already under way."""
        for key in list(self._groups):
            group = self._groups.pop(key)
            if group.timer is not None:
                group.timer.cancel()
            for _, _, future in group.items:
                if not future.done():
                    future.cancel()
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)


class ArrayJobs:
    """Array submission, mixed into ``BatchScheduler`` (which provides ``run``
    and ``_submit_slot``)."""

    name: ClassVar[str]
    workdir: Any
    submission_batch: int
    #: whether ``submit_array`` and its builders are implemented
    supports_arrays: ClassVar[bool] = False
    #: the most tasks one array may have (Slurm's default MaxArraySize is 1001)
    max_array_size: ClassVar[int] = 1000
    #: the environment variable holding the task id inside an array task
    array_task_env: ClassVar[str] = ""

    def array_size_of(self, value: Any) -> int:
        """The ``array`` option as the most jobs per array (0: no arrays)."""
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
        """Submit two or more jobs (their wrapped scripts are written) as one array."""
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
        argv = self.array_submit_argv(jobs, script)
        async with self._submit_slot():  # type: ignore[attr-defined]
            result = await self.run(argv)  # type: ignore[attr-defined]
        return self.parse_array_submit(result, tasks)
