"""The alerts' state and the notifications to deliver, in the queue db.

``save`` commits an evaluation in one transaction: the new state of each alert,
the alerts dropped, and one outbox row per notification. A sender then
delivers the outbox rows and deletes them (``done``) or retries them later
(``failed``). So a daemon killed between the evaluation and the delivery
delivers after its restart, and an evaluation repeated after a restart finds
the transition already recorded and notifies nothing twice. (A crash in the
instant between a delivery and its deletion re-sends that one notification: at
least once, never lost.)
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..queue.db import Database
from .alerts import AlertState, Evaluation, Notification

__all__ = ["OutboxItem", "claim_due", "done", "failed", "list_alerts", "load", "save"]

_COLS = (
    "rule, key, state, since, active_at, value, labels, summary, fired_at,"
    " resolved_at, notified"
)
MAX_ATTEMPTS = 5  # a notification that failed this often is given up (logged)


@dataclass(frozen=True)
class OutboxItem:
    id: int
    notifier: str
    kind: str
    payload: dict[str, Any]
    attempts: int


def _state(row: Any) -> AlertState:
    (
        rule,
        key,
        state,
        since,
        active_at,
        value,
        labels,
        summary,
        fired_at,
        resolved_at,
        notified,
    ) = row
    return AlertState(
        rule=rule,
        key=key,
        state=state,
        since=since,
        value=value if value is not None else 0.0,
        active_at=active_at,
        labels=json.loads(labels) if labels else {},
        summary=summary or "",
        fired_at=fired_at,
        resolved_at=resolved_at,
        notified=json.loads(notified) if notified else {},
    )


def load(db: Database) -> dict[tuple[str, str], AlertState]:
    return {
        (s.rule, s.key): s for s in map(_state, db.query(f"SELECT {_COLS} FROM alerts"))
    }


def list_alerts(db: Database, firing_only: bool = False) -> list[dict[str, Any]]:
    """Alerts for ``xqute alerts`` and the API: firing first, then pending, then
    resolved, newest first within each."""
    where = "WHERE state = 'firing'" if firing_only else ""
    rows = db.query(
        f"SELECT {_COLS} FROM alerts {where} ORDER BY"
        " CASE state WHEN 'firing' THEN 0 WHEN 'pending' THEN 1 ELSE 2 END, since DESC"
    )
    out = []
    for state in map(_state, rows):
        out.append(
            {
                "rule": state.rule,
                "key": state.key,
                "state": state.state,
                "since": state.since,
                "active_at": state.active_at,
                "value": state.value,
                "labels": dict(state.labels),
                "summary": state.summary,
                "fired_at": state.fired_at,
                "resolved_at": state.resolved_at,
                "notified": dict(state.notified),
            }
        )
    return out


def save(
    db: Database,
    evaluation: Evaluation,
    payloads: Iterable[tuple[Notification, dict[str, Any]]],
    now: float | None = None,
    events: Iterable[tuple[str, dict[str, Any]]] = (),
) -> None:
    """Commit an evaluation: states, dropped alerts, the outbox, and the
    transitions as events."""
    now = time.time() if now is None else now
    items = list(payloads)
    events = list(events)

    def write(conn: sqlite3.Connection) -> None:
        for t in evaluation.transitions:
            if t.new is None:
                conn.execute(
                    "DELETE FROM alerts WHERE rule = ? AND key = ?", (t.rule, t.key)
                )
        conn.executemany(
            f"INSERT OR REPLACE INTO alerts ({_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    s.rule,
                    s.key,
                    s.state,
                    s.since,
                    s.active_at,
                    s.value,
                    json.dumps(dict(s.labels)),
                    s.summary,
                    s.fired_at,
                    s.resolved_at,
                    json.dumps(dict(s.notified)),
                )
                for s in evaluation.states.values()
            ],
        )
        conn.executemany(
            "INSERT INTO alert_outbox (created_at, notifier, kind, payload, next_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [(now, n.notifier, n.kind, json.dumps(p), now) for n, p in items],
        )
        if events:
            _append_events(conn, now, events)

    db.write(write)


def _append_events(
    conn: sqlite3.Connection, now: float, events: list[tuple[str, dict[str, Any]]]
) -> None:
    """Alert transitions into the event stream (``alert.firing`` ...)."""
    from ..orchestration.events import append_many

    append_many(
        conn,
        [
            (now, kind, data.get("labels", {}).get("namespace") or "default",
             None, None, None, None, data)
            for kind, data in events
        ],
    )  # fmt: skip


def claim_due(
    db: Database, now: float | None = None, limit: int = 50
) -> list[OutboxItem]:
    """Outbox rows due for delivery, oldest first."""
    now = time.time() if now is None else now
    rows = db.query(
        "SELECT id, notifier, kind, payload, attempts FROM alert_outbox"
        " WHERE next_at <= ? ORDER BY id LIMIT ?",
        (now, limit),
    )
    return [OutboxItem(i, n, k, json.loads(p), a) for i, n, k, p, a in rows]


def done(db: Database, item_id: int) -> None:
    db.write(
        lambda conn: conn.execute("DELETE FROM alert_outbox WHERE id = ?", (item_id,))
    )


def failed(
    db: Database, item: OutboxItem, error: str, now: float | None = None
) -> bool:
    """Record a failed delivery: retried with backoff (10 s, 20 s, 40 s ...);
    after ``MAX_ATTEMPTS`` the row is deleted. True if it will be retried."""
    now = time.time() if now is None else now
    attempts = item.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        done(db, item.id)
        return False
    delay_s = 10.0 * 2 ** (attempts - 1)
    db.write(
        lambda conn: conn.execute(
            "UPDATE alert_outbox SET attempts = ?, next_at = ?, error = ? WHERE id = ?",
            (attempts, now + delay_s, error[:500], item.id),
        )
    )
    return True
