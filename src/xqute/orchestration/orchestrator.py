"""``Orchestrator``: the Python API of layer 3 (the seed's ``Scheduler``; that
name is taken by xqute's backend base class).

A thin facade: every method is a few lines over ``catalog`` (definitions),
``runs`` (executions), ``status`` and ``events``. It works on the queue's db
directly, like ``SqliteJobScheduler``: no daemon is needed to define, run,
cancel or retry; the daemon (or an embedded pool, see ``WorkflowExecution.wait``)
executes. Synchronous and thread-safe; ``AsyncOrchestrator`` has the same
methods as coroutines.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from ..queue.store import SqliteJobScheduler
from . import catalog
from . import definitions as defs
from . import events as ev
from .catalog import DefinitionInfo
from .models import JobSpec, JobTemplate, Workflow
from .resource_methods import ResourceMethods

__all__ = ["Orchestrator"]


class Orchestrator(ResourceMethods):
    """Jobs, templates and workflows on the queue's db (and the resource
    policy: ``resource_methods.py``).

    Args:
        db_path: the queue db (default ``$XQUTE_DB``, else the per-user state
            dir), the same one the daemon serves.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] | None = None,
        *,
        busy_timeout_s: float = 60.0,
    ) -> None:
        self.store = SqliteJobScheduler(db_path, busy_timeout_s=busy_timeout_s)
        self.db = self.store.db

    def __repr__(self) -> str:
        return f"<Orchestrator {self.store.db_path}>"

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------ templates
    def create_job_template(
        self, template: JobTemplate | dict[str, Any]
    ) -> DefinitionInfo:
        """Store a template (a new version if it changed)."""
        return catalog.create(self.db, "template", template)[0]

    def get_job_template(self, name: str, namespace: str = "default") -> JobTemplate:
        return catalog.load(self.db, "template", name, namespace)[1]

    def list_job_templates(self, namespace: str | None = None) -> list[JobTemplate]:
        return self._list("template", namespace)

    def delete_job_template(self, name: str, namespace: str = "default") -> None:
        catalog.delete(self.db, "template", name, namespace)

    # ------------------------------------------------------------------ jobs
    def get_job(self, name: str, namespace: str = "default") -> JobSpec:
        return catalog.load(self.db, "job", name, namespace)[1]

    def list_jobs(self, namespace: str | None = None) -> list[JobSpec]:
        return self._list("job", namespace)

    # ------------------------------------------------------------------ workflows
    def create_workflow(self, workflow: Workflow | dict[str, Any]) -> DefinitionInfo:
        """Validate (every problem in one ``DefinitionError``) and store."""
        return catalog.create(self.db, "workflow", workflow)[0]

    def get_workflow(self, name: str, namespace: str = "default") -> Workflow:
        return catalog.load(self.db, "workflow", name, namespace)[1]

    def list_workflows(self, namespace: str | None = None) -> list[Workflow]:
        return self._list("workflow", namespace)

    def delete_workflow(self, name: str, namespace: str = "default") -> None:
        catalog.delete(self.db, "workflow", name, namespace)

    # ------------------------------------------------------------------ events
    def watch(
        self,
        *,
        execution_id: int | None = None,
        since: int | str | None = None,
        types: list[str] | None = None,
        follow: bool = True,
        timeout: float | None = None,
    ) -> Iterator[ev.Event]:
        """Events from the cursor ``since`` (an event id; "now"; default: "now",
        or the run's first event with ``execution_id``, and then it ends after
        the run's terminal event)."""
        if since is None:
            since = 0 if execution_id is not None else "now"
        return ev.watch(
            self.db,
            since=since,
            run_id=execution_id,
            types=types,
            follow=follow,
            timeout_s=timeout,
        )

    # ------------------------------------------------------------------ helpers
    def _list(self, kind: str, namespace: str | None) -> list[Any]:
        model = catalog.KINDS[kind]
        return [
            model.model_validate(d.spec)
            for d in defs.list_latest(self.db, kind, namespace)
        ]
