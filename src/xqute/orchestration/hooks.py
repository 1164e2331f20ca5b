"""Plugin hooks of runs: ``on_workflow_start``, ``on_workflow_end`` and
``on_task_ready`` (specs in ``xqute/hooks.py``), called by the daemon's pool
from the event log, after the transitions committed.

Calling plugins inside the finish transaction would hold the db's write lock
for as long as a plugin takes, and a plugin's exception would undo a task's
end; so the reconcile step reads the events that happened since it last
looked (a cursor, one index range) and calls the hooks then, within about a
second. Runs created by any process (a client's ``execute_workflow``, a
schedule) are seen alike. A pool started later does not replay older events.
"""

from __future__ import annotations

import logging
from typing import Any

from ..hooks import HookCaller
from ..queue.db import Database
from . import events as ev

__all__ = ["EventHooks"]

logger = logging.getLogger("xqute.orchestration")
_HOOKS = ("on_workflow_start", "on_workflow_end", "on_task_ready")


class EventHooks:
    """Calls the run hooks of the enabled plugins for new events of one db."""

    def __init__(self, db: Database, plugins: Any = None) -> None:
        self.db = db
        self.caller = HookCaller(plugins)
        self.active = any(self.caller.implements(h) for h in _HOOKS)
        self.cursor = ev.last_id(db) if self.active else 0

    def dispatch(self) -> int:
        """Call the hooks for the events since the last call; how many."""
        if not self.active:
            return 0
        count = 0
        while True:
            batch = ev.read(self.db, self.cursor, limit=500)
            for event in batch:
                self.cursor = event.id
                count += self._call(event)
            if len(batch) < 500:
                return count

    def _call(self, event: ev.Event) -> int:
        kind, _, what = event.type.partition(".")
        if event.run_id is None or kind not in ("workflow", "job", "task"):
            return 0
        row = self.db.query("SELECT kind, name FROM runs WHERE id = ?", (event.run_id,))
        run = {"id": event.run_id, "kind": row[0][0] if row else kind,
               "name": row[0][1] if row else None, "namespace": event.namespace,
               "event": event.as_dict()}  # fmt: skip
        if kind == "task":
            if what != "ready":
                return 0
            hook, args = "on_task_ready", (run, event.task)
        elif what == "started":
            hook, args = "on_workflow_start", (run,)
        elif event.is_terminal:
            run["state"] = what
            hook, args = "on_workflow_end", (run,)
        else:
            return 0
        try:
            self.caller.call(hook, *args)
        except Exception:
            logger.exception("plugin hook %s failed for event %s", hook, event.id)
        return 1
