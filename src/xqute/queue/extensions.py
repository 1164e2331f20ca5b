"""Pool extensions: how the layers above the queue take part in a pool's cycle
without the queue importing them.

Workflows must advance in the very transaction that records a task's end, and
the daemon must re-derive due work (deadlines, schedule fires, autoscaling)
every few seconds; both run inside the pool, which belongs to layer 2. So the
pool loads the registered extensions when it starts and calls them:

- ``jobs_ended(conn, ended, now) -> bool``: inside the write transaction that
  records the end of jobs that belong to a run (``job_queue.run_id`` set), so an
  end and its consequences commit together. True when it queued new jobs: the
  pool then dispatches again at once (a dependent starts in the same cycle).
- ``jobs_claimed(conn, claimed, now)``: inside the claim transaction, for the
  claimed jobs that belong to a run (``(job id, run id)`` pairs).
- ``reconcile(db, now) -> float | None``: on the pool's db thread, when the
  pool starts and then every ``reconcile_interval_s`` (or earlier, at the unix
  time the previous call returned). Idempotent statements only: several pools
  may serve one db, and a crash may repeat any of it.

Extensions are found like backends: the builtins below (``"module:attr"``,
imported on first use) and the entry-point group ``xqute.pool_extensions``;
``attr`` is an object with any of the three methods (``PoolExtension`` gives
no-op defaults). To add a periodic loop to the daemon, add a ``reconcile``.
"""

from __future__ import annotations

import importlib
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from .db import Database

__all__ = [
    "ENTRY_POINT_GROUP",
    "EndedJob",
    "PoolExtension",
    "Reconciler",
    "load_extensions",
]

logger = logging.getLogger("xqute.queue")
ENTRY_POINT_GROUP = "xqute.pool_extensions"

# name -> "module:attr" (absolute: they live above this layer)
_BUILTINS: dict[str, str] = {
    "orchestration": "xqute.orchestration.pool_hooks:EXTENSION",
    "schedules": "xqute.orchestration.fire_loop:SCHEDULES",
}


@dataclass(frozen=True, slots=True)
class EndedJob:
    """A job of a run whose end the pool is recording."""

    id: int
    run_id: int
    state: str  # completed, failed, timeout, cancelled
    return_code: int | None
    reason: str | None
    ended_at: float
    job_dir: str | None


class PoolExtension:
    """Base with no-op defaults; subclass and override what you need."""

    name = "extension"
    #: how often ``reconcile`` runs at most this far apart
    reconcile_interval_s = 1.0

    def jobs_ended(
        self, conn: sqlite3.Connection, ended: Sequence[EndedJob], now: float
    ) -> bool:
        return False

    def jobs_claimed(
        self, conn: sqlite3.Connection, claimed: Sequence[tuple[int, int]], now: float
    ) -> None:
        return None

    def reconcile(self, db: Database, now: float) -> float | None:
        return None


def load_extensions(names: Sequence[Any] | None = None) -> list[Any]:
    """The extensions to load: every registered one (None), or those named in
    ``names`` (an item that is not a str is an extension object, used as is)."""
    specs = dict(_BUILTINS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        specs.setdefault(ep.name, ep.value)
    if names is None:
        names = list(specs)
    out = []
    for name in names:
        if not isinstance(name, str):
            out.append(name)
            continue
        if name not in specs:
            raise ConfigError.choice("pool extension", name, sorted(specs))
        module, _, attr = specs[name].partition(":")
        out.append(getattr(importlib.import_module(module), attr))
    return out


class Reconciler:
    """When each extension's ``reconcile`` is due next (for one pool)."""

    def __init__(self, extensions: Sequence[Any]) -> None:
        self.extensions = [e for e in extensions if hasattr(e, "reconcile")]
        self.due = [0.0] * len(self.extensions)  # unix times
        self.intervals = [
            float(getattr(e, "reconcile_interval_s", 1.0)) for e in self.extensions
        ]

    def run_due(self, db: Database, now: float) -> bool:
        """Run the ``reconcile`` calls that are due (on the pool's db thread);
        True if any ran (it may have queued jobs with the pool's connection)."""
        ran = False
        for i, ext in enumerate(self.extensions):
            if not self._is_due(i, now):
                continue
            interval = self.intervals[i]
            try:
                nxt = ext.reconcile(db, now)
            except Exception:
                logger.exception("pool extension %r: reconcile failed", ext)
                nxt = None
            self.due[i] = min(nxt or now + interval, now + interval)
            ran = True
        return ran

    def any_due(self, now: float) -> bool:
        """Whether a ``reconcile`` is due (the pool's loop asks before taking
        a trip to its db thread for ``run_due``)."""
        return any(self._is_due(i, now) for i in range(len(self.due)))

    def _is_due(self, i: int, now: float) -> bool:
        # due further than an interval ahead: the clock went back, run it now
        return not now < self.due[i] <= now + self.intervals[i]

    def wait_s(self, now: float, longest_s: float) -> float:
        """How long the pool may sleep before the next ``reconcile`` is due."""
        waits = (min(d - now, i) for d, i in zip(self.due, self.intervals, strict=True))
        return max(0.0, min([longest_s, *waits]))
