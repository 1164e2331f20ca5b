"""The definitions store: versioned jobs, templates, workflows (and the other
kinds later layers add: quotas, priority classes ...) in the ``definitions``
table, with a workflow's edges in ``def_edges``.

- ``put`` adds version n + 1 of (kind, namespace, name) unless the latest
  version has the same spec (same canonical JSON hash): applying a file twice
  changes nothing.
- A run pins the row (``runs.def_id``) it started from: editing a workflow never
  changes the runs already going.
- ``delete`` marks every version deleted (``deleted_at``); the rows stay, so
  the runs that pinned them still read them. Creating the name again makes a
  new version.

Specs are stored as plain JSON (the models' ``model_dump(mode="json")``), so
the daemon reads them without pydantic. Every function takes a connection
inside the caller's transaction, or the ``Database`` for reads.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..queue.db import Database

__all__ = [
    "Definition",
    "canonical",
    "children",
    "delete",
    "get",
    "get_by_id",
    "latest_specs",
    "list_latest",
    "preview",
    "put",
    "put_edges",
    "set_suspended",
]

_COLS = (
    "id, kind, namespace, name, version, spec, spec_hash, created_at, deleted_at,"
    " suspended"
)


@dataclass(frozen=True, slots=True)
class Definition:
    """One stored version of a definition (``spec``: its JSON, parsed)."""

    id: int
    kind: str
    namespace: str
    name: str
    version: int
    spec: dict[str, Any]
    spec_hash: str
    created_at: float
    deleted_at: float | None
    suspended: bool

    @classmethod
    def from_row(cls, row: Any) -> Definition:
        values = list(row)
        values[5] = json.loads(values[5])
        values[9] = bool(values[9])
        return cls(*values)


def canonical(spec: dict[str, Any]) -> tuple[str, str]:
    """(canonical JSON, its sha256): key order and spacing do not matter."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return text, hashlib.sha256(text.encode()).hexdigest()


def put(
    conn: sqlite3.Connection,
    kind: str,
    name: str,
    spec: dict[str, Any],
    now: float,
    namespace: str = "default",
) -> tuple[Definition, bool]:
    """Store ``spec`` as the latest version; (the row, whether it is new). The
    same spec as the latest live version is not stored again."""
    text, digest = canonical(spec)
    latest = conn.execute(
        f"SELECT {_COLS} FROM definitions WHERE kind = ? AND namespace = ?"
        " AND name = ? ORDER BY version DESC LIMIT 1",
        (kind, namespace, name),
    ).fetchone()
    if latest is not None:
        current = Definition.from_row(latest)
        if current.deleted_at is None and current.spec_hash == digest:
            return current, False
        version, suspended = current.version + 1, current.suspended
        if current.deleted_at is not None:
            suspended = False
    else:
        version, suspended = 1, False
    row = conn.execute(
        "INSERT INTO definitions (kind, namespace, name, version, spec, spec_hash,"
        " created_at, suspended) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        f" RETURNING {_COLS}",
        (kind, namespace, name, version, text, digest, now, int(suspended)),
    ).fetchone()
    return Definition.from_row(row), True


def preview(
    db: Database | sqlite3.Connection,
    kind: str,
    name: str,
    spec: dict[str, Any],
    namespace: str = "default",
) -> tuple[str, int, str]:
    """What ``put`` would do (``apply --dry-run``): (created | updated |
    unchanged, the version it would be, a diff of the spec when updated)."""
    old = get(db, kind, name, namespace)
    if old is None:
        return "created", 1, ""
    if canonical(old.spec)[1] == canonical(spec)[1]:
        return "unchanged", old.version, ""
    a = json.dumps(old.spec, indent=1, sort_keys=True).splitlines()
    b = json.dumps(spec, indent=1, sort_keys=True).splitlines()
    diff = difflib.unified_diff(a, b, f"v{old.version}", "new", lineterm="")
    return "updated", old.version + 1, "\n".join(diff)


def put_edges(
    conn: sqlite3.Connection, def_id: int, edges: Iterable[tuple[str, str]]
) -> None:
    """The (parent, child) edges of a workflow version."""
    conn.executemany(
        "INSERT OR IGNORE INTO def_edges (def_id, parent, child) VALUES (?, ?, ?)",
        [(def_id, parent, child) for parent, child in edges],
    )


def children(conn: sqlite3.Connection, def_id: int, parent: str) -> list[str]:
    """The tasks that depend on ``parent`` (one index range)."""
    return [
        row[0]
        for row in conn.execute(
            "SELECT child FROM def_edges WHERE def_id = ? AND parent = ?",
            (def_id, parent),
        )
    ]


def get(
    db: Database | sqlite3.Connection,
    kind: str,
    name: str,
    namespace: str = "default",
    version: int | None = None,
    include_deleted: bool = False,
) -> Definition | None:
    """The latest live version (or ``version``) of a definition, or None."""
    sql = (
        f"SELECT {_COLS} FROM definitions WHERE kind = ? AND namespace = ? AND name = ?"
    )
    params: list[Any] = [kind, namespace, name]
    if version is not None:
        sql += " AND version = ?"
        params.append(version)
    sql += " ORDER BY version DESC LIMIT 1"
    rows = _query(db, sql, params)
    if not rows:
        return None
    found = Definition.from_row(rows[0])
    if found.deleted_at is not None and not include_deleted:
        return None
    return found


def get_by_id(db: Database | sqlite3.Connection, def_id: int) -> Definition | None:
    rows = _query(db, f"SELECT {_COLS} FROM definitions WHERE id = ?", [def_id])
    return Definition.from_row(rows[0]) if rows else None


def list_latest(
    db: Database | sqlite3.Connection,
    kind: str | None = None,
    namespace: str | None = None,
) -> list[Definition]:
    """The latest live version of every definition (of ``kind``), by name."""
    where, params = ["d.deleted_at IS NULL"], []
    if kind is not None:
        where.append("d.kind = ?")
        params.append(kind)
    if namespace is not None:
        where.append("d.namespace = ?")
        params.append(namespace)
    rows = _query(
        db,
        f"SELECT {', '.join('d.' + c.strip() for c in _COLS.split(','))}"
        " FROM definitions d WHERE " + " AND ".join(where) + " AND d.version ="
        " (SELECT max(version) FROM definitions m WHERE m.kind = d.kind"
        " AND m.namespace = d.namespace AND m.name = d.name)"
        " ORDER BY d.kind, d.namespace, d.name",
        params,
    )
    return [Definition.from_row(row) for row in rows]


def latest_specs(
    db: Database | sqlite3.Connection, kind: str, namespace: str = "default"
) -> dict[str, dict[str, Any]]:
    """name -> spec of the live definitions of one kind (for validation)."""
    return {d.name: d.spec for d in list_latest(db, kind, namespace)}


def delete(
    conn: sqlite3.Connection,
    kind: str,
    name: str,
    now: float,
    namespace: str = "default",
) -> bool:
    """Mark every version deleted; False if there was no live one."""
    cur = conn.execute(
        "UPDATE definitions SET deleted_at = ? WHERE kind = ? AND namespace = ?"
        " AND name = ? AND deleted_at IS NULL",
        (now, kind, namespace, name),
    )
    return cur.rowcount > 0


def set_suspended(
    conn: sqlite3.Connection,
    kind: str,
    name: str,
    suspended: bool,
    namespace: str = "default",
) -> bool:
    """Suspend or resume a definition (every version: the flag is the name's)."""
    cur = conn.execute(
        "UPDATE definitions SET suspended = ? WHERE kind = ? AND namespace = ?"
        " AND name = ? AND deleted_at IS NULL",
        (int(suspended), kind, namespace, name),
    )
    return cur.rowcount > 0


def _query(db: Database | sqlite3.Connection, sql: str, params: Any) -> list[Any]:
    if isinstance(db, sqlite3.Connection):
        return db.execute(sql, params).fetchall()
    return db.query(sql, params)
