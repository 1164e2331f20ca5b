"""What alert rules look at, read from the queue db (the I/O side of
``alerts.evaluate``).

One function per rule kind returns that rule's samples, or ``None`` when its
data is not available in this db (a table that a later part of xqute adds, not
there yet): ``evaluate`` then leaves the rule's alerts alone. Every query is an
index range (pending or running jobs, jobs ended in a window, live workers,
active runs), so an evaluation costs the same with ten jobs or a million.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ..queue.active_jobs import count_pending
from ..queue.db import Database
from .alerts import Sample
from .rules import AlertRule

__all__ = ["Schema", "collect"]


class Schema:
    """Which optional tables and columns this db has (read once per use)."""

    def __init__(self, db: Database) -> None:
        self.tables = {
            row[0]
            for row in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        self.job_columns = {row[1] for row in db.query("PRAGMA table_info(job_queue)")}
        self._db = db

    def columns(self, table: str) -> set[str]:
        if table not in self.tables:
            return set()
        return {row[1] for row in self._db.query(f"PRAGMA table_info({table})")}

    @property
    def namespaces(self) -> bool:
        return "namespace" in self.job_columns


def collect(
    db: Database, rules: Sequence[AlertRule], now: float | None = None
) -> dict[str, list[Sample] | None]:
    """Each rule's samples (None: no data for it here)."""
    now = time.time() if now is None else now
    schema = Schema(db)
    out: dict[str, list[Sample] | None] = {}
    for rule in rules:
        sampler = _SAMPLERS[rule.kind]
        out[rule.name] = sampler(db, schema, rule, now)
    return out


def _ns_filter(schema: Schema, rule: AlertRule) -> tuple[str, list[Any]]:
    if rule.namespace is None or not schema.namespaces:
        return "", []
    return " AND namespace = ?", [rule.namespace]


def _queue_length(
    db: Database, schema: Schema, rule: AlertRule, now: float
) -> list[Sample] | None:
    count = count_pending(db, rule.namespace)
    key = rule.namespace or "all"
    labels = {"namespace": rule.namespace} if rule.namespace else {}
    return [Sample(key, float(count), labels, f"{count} jobs pending")]


def _job_runtime(
    db: Database, schema: Schema, rule: AlertRule, now: float
) -> list[Sample] | None:
    where, params = _ns_filter(schema, rule)
    rows = db.query(
        "SELECT id, name, started_at FROM job_queue WHERE state = 'running'"
        f" AND started_at IS NOT NULL{where}",
        params,
    )
    return [
        Sample(
            str(job_id),
            now - started,
            {"job": str(job_id), "name": name},
            f"job {job_id} ({name or 'unnamed'}) has run for {_ago(now - started)}",
        )
        for job_id, name, started in rows
    ]


def _failure_rate(
    db: Database, schema: Schema, rule: AlertRule, now: float
) -> list[Sample] | None:
    where, params = _ns_filter(schema, rule)
    counts = dict(
        db.query(
            "SELECT state, count(*) FROM job_queue WHERE ended_at >= ?"
            f"{where} GROUP BY state",
            [now - rule.window_s, *params],
        )
    )
    failed = counts.get("failed", 0) + counts.get("timeout", 0)
    ended = failed + counts.get("completed", 0)
    if ended < rule.min_jobs:
        return []
    key = rule.namespace or "all"
    return [
        Sample(
            key,
            failed / ended,
            {"namespace": rule.namespace} if rule.namespace else {},
            f"{failed} of {ended} jobs failed in the last {_ago(rule.window_s)}",
        )
    ]


def _worker_age(
    db: Database, schema: Schema, rule: AlertRule, now: float
) -> list[Sample] | None:
    rows = db.query(
        "SELECT id, backend, heartbeat_at FROM worker_nodes"
        " WHERE state IN ('running', 'stopping')"
    )
    return [
        Sample(
            worker,
            now - beat,
            {"pool": backend},
            f"pool {worker} last beat {_ago(now - beat)} ago",
        )
        for worker, backend, beat in rows
    ]


def _workflow_deadline(
    db: Database, schema: Schema, rule: AlertRule, now: float
) -> list[Sample] | None:
    cols = schema.columns("runs")
    if not {"id", "name", "state", rule.reference} <= cols:
        return None
    where, params = "", []
    if rule.workflow is not None:
        where, params = " AND name = ?", [rule.workflow]
    rows = db.query(
        f"SELECT id, name, {rule.reference} FROM runs"
        f" WHERE state IN ('pending', 'running'){where}",
        params,
    )
    return [
        Sample(
            str(run_id),
            now - ref,
            {"workflow": name, "run": str(run_id)},
            f"run {run_id} of {name} unfinished {_ago(now - ref)} after its"
            f" {rule.reference.replace('_', ' ')}",
        )
        for run_id, name, ref in rows
        if ref is not None
    ]


def _schedule_missed(
    db: Database, schema: Schema, rule: AlertRule, now: float
) -> list[Sample] | None:
    fires = _schedule_fires(db, schema, rule, now - rule.window_s)
    if fires is None:
        return None
    counts: dict[str, int] = {}
    for name, outcome, count, _late in fires:
        if outcome in MISSED:
            counts[name] = counts.get(name, 0) + count
    return [
        Sample(
            name,
            float(n),
            {"schedule": name},
            f"{n} fire times of {name} missed in the last {_ago(rule.window_s)}",
        )
        for name, n in sorted(counts.items())
    ]


def _schedule_late(
    db: Database, schema: Schema, rule: AlertRule, now: float
) -> list[Sample] | None:
    fires = _schedule_fires(db, schema, rule, now - max(rule.window_s, 86400))
    if fires is None:
        return None
    last: dict[str, float] = {}
    for name, outcome, _count, late in fires:  # oldest first: the last one wins
        if late is not None and outcome not in MISSED:
            last[name] = late
    return [
        Sample(name, late, {"schedule": name}, f"{name} fired {late:.1f}s late")
        for name, late in sorted(last.items())
    ]


MISSED = ("missed", "coalesced")


def _schedule_fires(
    db: Database, schema: Schema, rule: AlertRule, since: float
) -> list[tuple[str, str, int, float | None]] | None:
    """(schedule name, outcome, count, lateness s) of the fires of times since
    ``since``, oldest first; None without the schedules tables. One primary
    key range per schedule."""
    if not {"schedules", "schedule_fires"} <= schema.tables:
        return None
    where, params = "", []
    if rule.schedule is not None:
        where, params = " AND name = ?", [rule.schedule]
    schedules = db.query(
        f"SELECT id, name FROM schedules WHERE deleted_at IS NULL{where}", params
    )
    out = []
    for schedule_id, name in schedules:
        for outcome, count, late in db.query(
            "SELECT outcome, count, lateness_s FROM schedule_fires"
            " WHERE schedule_id = ? AND scheduled_for >= ? ORDER BY scheduled_for",
            (schedule_id, since),
        ):
            out.append((str(name), str(outcome), int(count or 1), late))
    return out


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


_SAMPLERS: dict[str, Callable[..., list[Sample] | None]] = {
    "queue_threshold": _queue_length,
    "job_timeout": _job_runtime,
    "job_failure_rate": _failure_rate,
    "worker_down": _worker_age,
    "workflow_deadline": _workflow_deadline,
    "schedule_missed": _schedule_missed,
    "schedule_late": _schedule_late,
}
