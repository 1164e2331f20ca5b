"""``AsyncOrchestrator``: the ``Orchestrator``'s methods as coroutines, for the
seed's ``await scheduler.create_job(...)`` style.

Each call runs the synchronous method in a worker thread (SQLite work is short
and blocking; the store keeps one connection per thread), so an event loop is
never blocked. ``watch`` is an async iterator that polls the event log on the
loop itself; ``wait`` waits for a run (with an embedded pool, in a thread, when
no daemon serves the db). The methods that start or name a run
(``execute_workflow``, ``run_job``, ``retry_workflow``, ``execution``) give an
``AsyncWorkflowExecution``: ``await execution.wait()`` never blocks the loop.
"""

from __future__ import annotations

import asyncio
import fnmatch
import functools
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

from . import events as ev
from .execution import WorkflowExecution
from .orchestrator import Orchestrator
from .resource_methods import RESOURCE_METHODS
from .status import RunStatus

__all__ = ["AsyncOrchestrator", "AsyncWorkflowExecution"]

#: the Orchestrator methods offered as coroutines (same names, same arguments)
METHODS = (
    "create_job_template",
    "get_job_template",
    "list_job_templates",
    "delete_job_template",
    "create_job",
    "run_job",
    "get_job",
    "list_jobs",
    "get_job_status",
    "suspend_job",
    "suspend_workflow",
    "resume_workflow",
    "resume_job",
    "delete_job",
    "create_workflow",
    "get_workflow",
    "list_workflows",
    "delete_workflow",
    "execute_workflow",
    "get_workflow_status",
    "list_workflow_runs",
    "list_runs",
    "cancel_workflow",
    "retry_workflow",
    "execution",
    "next_fires",
    *RESOURCE_METHODS,
)


class AsyncOrchestrator:
    """Like ``Orchestrator`` (same constructor), every method awaitable."""

    def __init__(self, db_path: str | os.PathLike[str] | None = None, **kwargs: Any):
        self.sync = Orchestrator(db_path, **kwargs)

    def __repr__(self) -> str:
        return f"<AsyncOrchestrator {self.sync.store.db_path}>"

    async def wait(self, execution_id: int, timeout: Any = None) -> RunStatus:
        """Wait for a run's end (see ``WorkflowExecution.wait``)."""
        ex = self.sync.execution(execution_id)
        return await asyncio.to_thread(ex.wait, timeout)

    async def watch(
        self,
        *,
        execution_id: int | None = None,
        since: int | str | None = None,
        types: list[str] | None = None,
        follow: bool = True,
        poll_s: float = 0.05,
    ) -> AsyncIterator[ev.Event]:
        """Events from a cursor, as ``Orchestrator.watch`` (ends after a run's
        terminal event with ``execution_id``)."""
        db = self.sync.db
        cursor = await asyncio.to_thread(ev.start_cursor, db, since, execution_id)
        while True:
            batch = await asyncio.to_thread(
                ev.read, db, cursor, run_id=execution_id, types=None, limit=1000
            )
            for event in batch:
                cursor = event.id
                if not types or any(_match(event.type, t) for t in types):
                    yield event
                if (
                    execution_id is not None
                    and event.is_terminal
                    and await asyncio.to_thread(ev.ends_watch, db, event)
                ):
                    return
            if not batch and not follow:
                return
            if len(batch) < 1000:
                await asyncio.sleep(poll_s)

    async def aclose(self) -> None:
        self.sync.close()


class AsyncWorkflowExecution:
    """A ``WorkflowExecution`` whose methods are coroutines (``events`` an
    async iterator)."""

    def __init__(self, orchestrator: AsyncOrchestrator, sync: WorkflowExecution):
        self.orchestrator, self.sync, self.id = orchestrator, sync, sync.id

    def __repr__(self) -> str:
        return f"<AsyncWorkflowExecution {self.id}>"

    async def status(self) -> RunStatus:
        return await asyncio.to_thread(self.sync.status)

    async def wait(self, timeout: Any = None, **kwargs: Any) -> RunStatus:
        """Until the run ends (``WorkflowExecution.wait``, in a thread)."""
        return await asyncio.to_thread(self.sync.wait, timeout, **kwargs)

    async def cancel(self, reason: str | None = None) -> bool:
        return await asyncio.to_thread(self.sync.cancel, reason)

    async def retry(self) -> AsyncWorkflowExecution:
        await asyncio.to_thread(self.sync.retry)
        return self

    async def outputs(self, task: str) -> dict[str, str]:
        return await asyncio.to_thread(self.sync.outputs, task)

    def events(self, *, since: int = 0, follow: bool = True) -> AsyncIterator[ev.Event]:
        """The run's events from ``since`` (default: its first), to its end."""
        return self.orchestrator.watch(execution_id=self.id, since=since, follow=follow)


def _match(type_: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(type_, pattern)


def _coroutine(name: str) -> Callable[..., Any]:
    method = getattr(Orchestrator, name)

    @functools.wraps(method)
    async def call(self: AsyncOrchestrator, *args: Any, **kwargs: Any) -> Any:
        result = await asyncio.to_thread(method, self.sync, *args, **kwargs)
        if isinstance(result, WorkflowExecution):
            return AsyncWorkflowExecution(self, result)
        return result

    return call


for _name in METHODS:
    setattr(AsyncOrchestrator, _name, _coroutine(_name))
