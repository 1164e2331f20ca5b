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

import dataclasses
import os
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from ..checks import MAX_ID, digits, positive_int
from ..errors import ConfigError, RunNotFoundError, WorkflowError
from ..queue.store import SqliteJobScheduler
from ..units import parse_timeout_s
from . import catalog, runs, schedule_ops, status
from . import definitions as defs
from . import events as ev
from .catalog import DefinitionInfo
from .events import RUN_STATES
from .execution import WorkflowExecution
from .models import JobSpec, JobTemplate, Workflow
from .resource_methods import ResourceMethods
from .status import RunStatus

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
    def create_job(
        self, spec: JobSpec | dict[str, Any], *, start: bool | None = None
    ) -> DefinitionInfo:
        """Store a job; without a schedule it also runs once now (unless
        ``start=False``): ``info.run_id`` is that run."""
        info, model = catalog.create(self.db, "job", spec)
        if start is False or (start is None and model.schedule is not None):
            return info
        run = self.run_job(model.name, namespace=model.namespace)
        return dataclasses.replace(info, run_id=run.id)

    def run_job(
        self,
        name: str,
        *,
        namespace: str = "default",
        parameters: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> WorkflowExecution:
        """A manual run of a defined job (``parameters`` bind its template's)."""
        return self._start("job", name, namespace, parameters, None, idempotency_key)

    def get_job_status(
        self, name_or_run_id: str | int, namespace: str = "default"
    ) -> RunStatus:
        """A job run's status: by run id, or the latest run of the job ``name``."""
        if isinstance(name_or_run_id, int) or digits(str(name_or_run_id)):
            return status.run_status(self.db, int(name_or_run_id))
        catalog.load(self.db, "job", str(name_or_run_id), namespace)
        runs = status.list_runs(self.db, str(name_or_run_id), kind="job", limit=1)
        if not runs:
            raise RunNotFoundError(f"job {name_or_run_id!r} has not run yet")
        return status.run_status(self.db, runs[0].id)

    def suspend_job(self, name: str, namespace: str = "default") -> None:
        """No new runs (nor schedule fires); its queue jobs that wait are held."""
        self._suspend("job", name, namespace, True)

    def resume_job(self, name: str, namespace: str = "default") -> None:
        self._suspend("job", name, namespace, False)

    def delete_job(
        self, name: str, namespace: str = "default", *, cascade: bool = False
    ) -> None:
        """Delete a job; refused while runs of it are active, unless ``cascade``
        (they are cancelled)."""
        self._delete("job", name, namespace, cascade)

    def next_fires(
        self, name: str, n: int = 5, namespace: str = "default"
    ) -> list[datetime]:
        """The next ``n`` fire times of the job or workflow ``name``'s schedule
        (``job/NAME`` or ``workflow/NAME`` if both exist): aware datetimes in
        its zone, DST applied (``xqute schedule next`` adds notes)."""
        from .schedule_view import next_fires

        return next_fires(self.db, name, n, namespace)

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

    def delete_workflow(
        self, name: str, namespace: str = "default", *, cascade: bool = False
    ) -> None:
        self._delete("workflow", name, namespace, cascade)

    # ------------------------------------------------------------------ runs
    def execute_workflow(
        self,
        name: str,
        parameters: dict[str, Any] | None = None,
        *,
        namespace: str = "default",
        timeout: Any = None,
        idempotency_key: str | None = None,
    ) -> WorkflowExecution:
        """Start a run of the latest version of a workflow; ``timeout`` (the
        workflow's own by default) cancels what still runs then."""
        return self._start(
            "workflow", name, namespace, parameters, timeout, idempotency_key
        )

    def suspend_workflow(self, name: str, namespace: str = "default") -> None:
        """No new runs (nor schedule fires); queue jobs of its runs that wait
        are held (running ones finish)."""
        self._suspend("workflow", name, namespace, True)

    def resume_workflow(self, name: str, namespace: str = "default") -> None:
        self._suspend("workflow", name, namespace, False)

    def get_workflow_status(self, execution_id: int) -> RunStatus:
        """The run's state and every task's state, attempts, rc, output."""
        return status.run_status(self.db, execution_id)

    def list_workflow_runs(
        self, name: str | None = None, *, state: str | None = None, limit: int = 100
    ) -> list[RunStatus]:
        """The latest runs (of workflow or job ``name``), newest first. A name
        that was never defined, a state runs do not have or a ``limit`` below
        1 is a ``ConfigError``/``DefinitionNotFoundError``, not an empty list."""
        return self.list_runs(name, kind=None, state=state, limit=limit)

    def list_runs(
        self,
        name: str | None = None,
        *,
        kind: str | None = None,
        state: str | None = None,
        limit: int = 100,
    ) -> list[RunStatus]:
        """``list_workflow_runs`` of one ``kind`` (job, workflow) or both."""
        limit = min(positive_int("limit", limit, 1, None), MAX_ID)
        if state is not None and state not in RUN_STATES:
            raise ConfigError.choice("run state", state, RUN_STATES)
        found = status.list_runs(self.db, name, kind=kind, state=state, limit=limit)
        if not found and name is not None:
            kinds = (kind,) if kind else ("workflow", "job")
            ever = self.db.query(
                "SELECT 1 FROM definitions WHERE name = ? AND kind IN"
                f" ({', '.join('?' * len(kinds))}) LIMIT 1",
                (name, *kinds),
            )
            if not ever:  # never defined (a deleted one keeps its runs)
                catalog.load(self.db, kinds[0], name)  # "no ... (did you mean)"
        return found

    def execution(self, execution_id: int) -> WorkflowExecution:
        status.run_status(self.db, execution_id, with_tasks=False)  # exists?
        return WorkflowExecution(self, execution_id)

    def cancel_workflow(self, execution_id: int, *, reason: str | None = None) -> bool:
        """Cancel a run: what did not start never will, what runs is killed
        (TERM, grace, KILL). False if it had ended."""
        now = time.time()
        done = self.db.write(
            lambda c: runs.request_cancel(c, execution_id, now, reason)
        )
        self.store.notify_pools()
        return done

    def retry_workflow(self, execution_id: int) -> WorkflowExecution:
        """Resume a finished run: its failed, cancelled and upstream-failed tasks
        run again; succeeded ones keep their outputs and do not."""
        now = time.time()
        self.db.write(lambda c: runs.retry_run(c, execution_id, now))
        self.store.notify_pools()
        return WorkflowExecution(self, execution_id)

    # ------------------------------------------------------------------ events
    def watch(
        self,
        *,
        execution_id: int | None = None,
        since: int | str | None = None,
        types: list[str] | None = None,
        follow: bool = True,
        timeout: float | str | timedelta | None = None,
    ) -> Iterator[ev.Event]:
        """Events from the cursor ``since`` (an event id; "now"; default: "now",
        or the run's first event with ``execution_id``, and then it ends after
        the run's terminal event)."""
        return ev.watch(
            self.db,
            since=since,
            run_id=execution_id,
            types=types,
            follow=follow,
            timeout_s=parse_timeout_s(timeout, "watch timeout"),
        )

    # ------------------------------------------------------------------ helpers
    def _start(
        self,
        kind: str,
        name: str,
        namespace: str,
        parameters: Any,
        timeout: Any,
        idempotency_key: str | None,
    ) -> WorkflowExecution:
        catalog.load(self.db, kind, name, namespace)  # a clear error if unknown
        timeout_s = parse_timeout_s(timeout)
        if parameters is not None and not isinstance(parameters, Mapping):
            raise ConfigError(
                f"parameters {parameters!r} must be a mapping of NAME to value"
            )
        now = time.time()
        run_id = self.db.write(
            lambda c: runs.create_run(
                c,
                kind,
                name,
                now,
                namespace=namespace,
                params=parameters,
                timeout_s=timeout_s,
                idempotency_key=idempotency_key,
            )
        )
        self.store.notify_pools()
        return WorkflowExecution(self, run_id)

    def _suspend(self, kind: str, name: str, namespace: str, flag: bool) -> None:
        catalog.load(self.db, kind, name, namespace)
        now = time.time()

        def write(conn: Any) -> None:
            defs.set_suspended(conn, kind, name, flag, namespace)
            # its schedule too: no fires; resuming skips what came due meanwhile
            schedule_ops.set_suspended_in_tx(conn, kind, name, flag, now, namespace)
            ids = runs.active_runs(conn, kind, name, namespace)
            for run_id in ids:
                if flag:
                    conn.execute(
                        "UPDATE job_queue SET state = 'held' WHERE run_id = ?"
                        " AND state IN ('pending', 'waiting')",
                        (run_id,),
                    )
                else:
                    conn.execute(
                        "UPDATE job_queue SET state = CASE WHEN eligible_at > ?"
                        " THEN 'waiting' ELSE 'pending' END WHERE run_id = ?"
                        " AND state = 'held'",
                        (now, run_id),
                    )
            ev.append(
                conn,
                f"{kind}.{'suspended' if flag else 'resumed'}",
                now,
                namespace=namespace,
                data={"name": name, "runs": ids},
            )

        self.db.write(write)
        self.store.notify_pools()

    def _delete(self, kind: str, name: str, namespace: str, cascade: bool) -> None:
        catalog.load(self.db, kind, name, namespace)
        active = runs.active_runs(self.db.conn(), kind, name, namespace)
        if active and not cascade:
            cli = " (xqute job delete --cascade)" if kind == "job" else ""
            raise WorkflowError(
                f"{kind} {name!r} has active runs {active}; cancel them first,"
                f" or delete with cascade=True{cli}"
            )
        now = time.time()
        for run_id in active:
            self.db.write(lambda c, r=run_id: runs.request_cancel(c, r, now, "deleted"))
        catalog.delete(self.db, kind, name, namespace)
        self.store.notify_pools()

    def _list(self, kind: str, namespace: str | None) -> list[Any]:
        model = catalog.KINDS[kind]
        return [
            model.model_validate(d.spec)
            for d in defs.list_latest(self.db, kind, namespace)
        ]
