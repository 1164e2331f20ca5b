"""The ``monitoring:`` block of ``xqute apply -f xqute.yaml``: checked with
the rest of the file, stored as the definition (kind ``monitoring``, name
``monitoring``) in apply's transaction, read by the daemon.

The daemon takes its monitoring from ``--config FILE`` when given, else from
the applied definition; ``--http`` overrides the address in either. The alert
rules and notifiers of an applied block are re-read by the running daemon
(each evaluation checks the definition's version: one indexed read); the HTTP
listener is opened at the daemon's start.

``block``, ``check``, ``store``, ``preview`` are what ``orchestration.apply``
calls for a block (like ``resource_blocks``).
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..orchestration import definitions as defs
from .rules import parse_monitoring

__all__ = ["KIND", "applied_block", "block", "check", "preview", "store"]

KIND = NAME = "monitoring"


def block(value: Any, plan: Any, path: tuple[Any, ...]) -> None:
    """Check the block (every problem names its key) and keep it for ``store``."""
    try:
        parse_monitoring(value, "monitoring")
    except ConfigError as exc:
        plan.problems.append((path, str(exc)))
        return
    plan.monitoring = value


def check(db: Any, plan: Any) -> None:
    """Nothing across definitions to check."""


def store(conn: Any, plan: Any, now: float) -> list[tuple[Any, ...]]:
    """(kind, name, namespace, action, version) when the file has the block."""
    if getattr(plan, "monitoring", None) is None:
        return []
    info, changed = defs.put(conn, KIND, NAME, plan.monitoring, now)
    action = (
        "unchanged" if not changed else ("created" if info.version == 1 else "updated")
    )
    return [(KIND, NAME, "default", action, info.version)]


def preview(db: Any, plan: Any) -> list[tuple[Any, ...]]:
    if getattr(plan, "monitoring", None) is None:
        return []
    action, version, diff = defs.preview(db, KIND, NAME, plan.monitoring)
    return [(KIND, NAME, "default", action, version, diff)]


def applied_block(db: Any) -> tuple[int, dict[str, Any]] | None:
    """(version, block) of the applied monitoring definition, or None."""
    found = defs.get(db, KIND, NAME)
    return None if found is None else (found.version, found.spec)
