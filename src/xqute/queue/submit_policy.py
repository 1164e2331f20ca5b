"""What a submit may name in the resource policy -- a priority class, a named
queue, a resource class -- resolved from their stored JSON (``definitions``)
without building the policy's objects (``policy_store.py``), so that ``xqute
submit`` stays a fast one-shot command.

``resolve`` applies them to one job's submit arguments:

- ``queue``: the queue's priority and priority class, unless given;
- ``resource_class``: its cpus, memory, GPUs and storage, unless given;
- ``priority_class``: must exist (else an error listing the classes); the
  ``global_default`` class when none is named; the class's ``value`` is the
  job's priority unless ``priority`` is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..errors import ConfigError
from .db import Database
from .requests import job_row, submit_args

TYPE_CHECKING = False  # typing is not imported at run time (xqute submit)
if TYPE_CHECKING:
    from typing import Any

    Policy = Mapping[str, Mapping[str, Mapping[str, Any]]]

__all__ = ["LATEST_SQL", "SUBMIT_KINDS", "read", "resolve", "submit_rows"]

#: what a submit may name
SUBMIT_KINDS = ("priority_class", "queue", "resource_class")
#: the latest live version of each definition of some kinds ({kinds}: marks)
LATEST_SQL = (
    "SELECT d.kind, d.name, d.spec FROM definitions d"
    " WHERE d.kind IN ({kinds}) AND d.deleted_at IS NULL AND d.version ="
    " (SELECT max(m.version) FROM definitions m WHERE m.kind = d.kind"
    " AND m.namespace = d.namespace AND m.name = d.name)"
)


def rows(db: Any, kinds: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(kind, name, spec JSON) of the latest live definitions of ``kinds``;
    ``db``: a ``Database`` or a connection (inside a transaction)."""
    sql = LATEST_SQL.format(kinds=",".join("?" * len(kinds)))
    if isinstance(db, Database):
        return db.query(sql, kinds)  # type: ignore[return-value]
    return db.execute(sql, kinds).fetchall()


def read(db: Any, kinds: tuple[str, ...] = SUBMIT_KINDS) -> dict[str, dict[str, Any]]:
    """{kind: {name: spec}} of ``kinds`` (specs as stored: canonical JSON)."""
    out: dict[str, dict[str, Any]] = {kind: {} for kind in kinds}
    found = rows(db, kinds)
    if found:
        import json  # (only then: a submit to a db without a policy needs none)

        for kind, name, spec in found:
            out[kind][name] = json.loads(spec)
    return out


def resolve(spec: Mapping[str, Any], policy: Policy) -> dict[str, Any]:
    """``spec`` (submit arguments) with its queue, resource class and priority
    class applied (see the module docstring); ``queue`` and ``resource_class``
    are consumed. ``policy``: ``read``'s answer."""
    out = dict(spec)
    name = out.pop("queue", None)
    if name is not None:
        queue = _find(policy, "queue", name)
        if out.get("priority") is None:
            out["priority"] = queue.get("priority", 0)
        if out.get("priority_class") is None:
            out["priority_class"] = queue.get("priority_class")
    name = out.pop("resource_class", None)
    if name is not None:
        rc = _find(policy, "resource_class", name)
        for key, field in (("cpus", "cpu"), ("memory", "memory"), ("gpus", "gpu"),
                           ("storage", "storage")):  # fmt: skip
            if out.get(key) is None:
                out[key] = rc.get(field)
    name = out.get("priority_class")
    classes = policy.get("priority_class", {})
    if name is None:
        name = next((n for n, pc in classes.items() if pc.get("global_default")), None)
    if name is not None:
        pc = _find(policy, "priority_class", name)
        out["priority_class"] = name
        if out.get("priority") is None:
            out["priority"] = pc.get("value", 0)
    return out


def _find(policy: Policy, kind: str, name: str) -> Mapping[str, Any]:
    known = policy.get(kind, {})
    if name in known:
        return known[name]
    if not known:
        raise ConfigError(f"{kind} {name!r} does not exist: none is defined")
    raise ConfigError.choice(kind, name, sorted(known))


def submit_rows(
    db: Any, now: float, jobs: Iterable[Mapping[str, Any]]
) -> list[tuple[Any, ...]]:
    """The ``INSERT_SQL`` rows of ``jobs`` (dicts of ``submit_job`` arguments),
    their classes and queues resolved against the db's policy (one read)."""
    specs = [submit_args(spec) for spec in jobs]
    if not specs:
        return []
    policy = read(db)
    return [job_row(now, **resolve(spec, policy)) for spec in specs]
