"""The counters and histograms of ``/metrics``: what ended (and started) since
the daemon started, read at each scrape from what is new in the db.

- ``JobTracker``: jobs that ended (the ``ended_at`` index, with a lag for ends
  committed after their time) and jobs seen running: completions by outcome,
  run time, wait (eligible -> started), extra runs.
- ``EventTracker``: the event log from a cursor: workflow and job runs that
  ended (with their duration), tasks that started (dependency satisfied ->
  started: the ``ready_at`` of their row), schedule fires (lateness).

Each job, run or fire is counted once; a restart starts the counts afresh
(Prometheus's ``rate()`` expects exactly that of a counter).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any

from ..queue.stats import LATENCY_BUCKETS_S, RUNTIME_BUCKETS_S, LabelledHistograms
from ..queue.store import SqliteJobScheduler
from .samples import Schema

__all__ = ["EventTracker", "JobTracker"]

LAG_S = 30.0  # a job's end may be committed this long after its ended_at
RUN_END_STATES = ("succeeded", "failed", "cancelled", "timeout")
BATCH = 5000


def _count(table: dict[tuple[str, ...], float], key: tuple[str, ...], n: float = 1):
    table[key] = table.get(key, 0) + n


class JobTracker:
    """Counts jobs as they end (and start), reading only what is new."""

    def __init__(self, store: SqliteJobScheduler, since: float | None = None) -> None:
        self.store = store
        self.watermark = time.time() if since is None else since
        self.completions: dict[tuple[str, ...], float] = {}
        self.retries: dict[tuple[str, ...], float] = {}
        self.durations = LabelledHistograms(RUNTIME_BUCKETS_S)
        self.waits = LabelledHistograms(RUNTIME_BUCKETS_S)
        self._ended: dict[int, float] = {}  # recent ends seen: id -> ended_at
        self._started: set[int] = set()  # running jobs whose wait was observed
        self._lock = threading.Lock()

    def update(self, schema: Schema) -> None:
        with self._lock:
            self._update(schema)

    def _update(self, schema: Schema) -> None:
        cols = schema.job_columns
        ns = "namespace" if "namespace" in cols else "'default'"
        pc = "priority_class" if "priority_class" in cols else "''"
        since_col = (
            "coalesce(eligible_at, submitted_at)"
            if "eligible_at" in cols
            else "submitted_at"
        )
        db = self.store.db
        live = set()
        for job_id, namespace, pclass, eligible, started in db.query(
            f"SELECT id, {ns}, {pc}, {since_col}, started_at FROM job_queue"
            " WHERE state = 'running' AND started_at IS NOT NULL"
        ):
            live.add(job_id)
            if job_id not in self._started and started >= self.watermark - LAG_S:
                self.waits.observe(
                    (namespace or "default", pclass or ""), max(0.0, started - eligible)
                )
            self._started.add(job_id)
        newest = self.watermark
        for job_id, state, namespace, pclass, eligible, started, end, tries in db.query(
            f"SELECT id, state, {ns}, {pc}, {since_col}, started_at, ended_at,"
            " attempts FROM job_queue WHERE ended_at > ? ORDER BY ended_at",
            (self.watermark - LAG_S,),
        ):
            newest = max(newest, end)
            if job_id in self._ended:
                continue
            self._ended[job_id] = end
            namespace = namespace or "default"
            _count(self.completions, (namespace, state))
            if started is not None:
                self.durations.observe((namespace, state), max(0.0, end - started))
                if job_id not in self._started:
                    self.waits.observe(
                        (namespace, pclass or ""), max(0.0, started - eligible)
                    )
            if tries and tries > 1:
                _count(self.retries, (namespace, "requeued"), tries - 1)
            self._started.discard(job_id)
        self._started &= live
        self.watermark = newest
        horizon = newest - 2 * LAG_S
        self._ended = {i: t for i, t in self._ended.items() if t > horizon}


class EventTracker:
    """Reads the event log from where it stopped (the cursor at the daemon's
    start, then the last id it read)."""

    def __init__(self, store: SqliteJobScheduler, cursor: int | None = None) -> None:
        self.store = store
        self.cursor = cursor
        self.runs_ended: dict[tuple[str, ...], float] = {}
        self.run_durations = LabelledHistograms(RUNTIME_BUCKETS_S)
        self.ready_latency = LabelledHistograms(LATENCY_BUCKETS_S)
        self.lateness = LabelledHistograms(LATENCY_BUCKETS_S)
        self._lock = threading.Lock()

    def start(self, schema: Schema) -> None:
        """Count from now on (call at the daemon's start)."""
        if self.cursor is None and "events" in schema.tables:
            self.cursor = self.store.db.query(
                "SELECT coalesce(max(id), 0) FROM events"
            )[0][0]

    def update(self, schema: Schema) -> None:
        if "events" not in schema.tables:
            return
        with self._lock:
            self.start(schema)
            while True:
                rows = self.store.db.query(
                    "SELECT id, ts, type, run_id, task, attempt, data FROM events"
                    " WHERE id > ? AND (type GLOB 'workflow.*' OR type GLOB 'job.*'"
                    " OR type = 'task.started' OR type = 'schedule.fired')"
                    " ORDER BY id LIMIT ?",
                    (self.cursor, BATCH),
                )
                if rows:
                    self._take(rows)
                    self.cursor = rows[-1][0]
                if len(rows) < BATCH:
                    break

    def _take(self, rows: Sequence[Any]) -> None:
        ends, starts = [], []
        for _id, ts, kind, run_id, task, attempt, data in rows:
            family, _, what = kind.partition(".")
            if family in ("workflow", "job") and what in RUN_END_STATES:
                ends.append((run_id, family, what, _data(data).get("seconds")))
            elif kind == "task.started" and (attempt or 1) == 1:
                starts.append((run_id, task, ts))
            elif kind == "schedule.fired":
                info = _data(data)
                late = info.get("lateness_s")
                if late is not None and not info.get("manual"):
                    self.lateness.observe(
                        (str(info.get("schedule", "")),), max(0.0, late)
                    )
        names = self._run_names({r for r, *_ in ends} | {r for r, *_ in starts})
        for run_id, family, outcome, seconds in ends:
            key = (names.get(run_id, ""), family, outcome)
            _count(self.runs_ended, key)
            if seconds is not None:
                self.run_durations.observe(key, float(seconds))
        by_run: dict[int, list[tuple[str, float]]] = {}
        for run_id, task, ts in starts:
            by_run.setdefault(run_id, []).append((task, ts))
        for run_id, started in by_run.items():
            ready = self._ready_at(run_id, [task for task, _ in started])
            for task, ts in started:
                if ready.get(task) is not None:
                    self.ready_latency.observe(
                        (names.get(run_id, ""),), max(0.0, ts - ready[task])
                    )

    def _ready_at(self, run_id: int, tasks: list[str]) -> dict[str, float]:
        sql = "SELECT task, ready_at FROM run_tasks WHERE run_id = ? AND task IN"
        return _pairs(self.store.db, sql, tasks, (run_id,))

    def _run_names(self, run_ids: set[Any]) -> dict[int, str]:
        ids = [i for i in run_ids if i is not None]
        return _pairs(self.store.db, "SELECT id, name FROM runs WHERE id IN", ids)


def _pairs(db: Any, sql: str, values: list[Any], before: tuple[Any, ...] = ()) -> dict:
    """The (key, value) rows of ``sql ... IN (values)``, 500 values a query
    (SQLite caps the parameters of a statement)."""
    out: dict[Any, Any] = {}
    for start in range(0, len(values), 500):
        chunk = values[start : start + 500]
        marks = ",".join("?" * len(chunk))
        out.update(db.query(f"{sql} ({marks})", [*before, *chunk]))
    return out


def _data(text: Any) -> dict[str, Any]:
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
