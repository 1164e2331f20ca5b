"""Reading the resource policy from the db: quotas, priority classes, named
queues, resource classes and autoscaling policies, stored as definitions (the
orchestration layer writes them; see orchestration/resource_api.py).

``load_catalog`` reads the latest live version of each, without pydantic, for
``submit`` (to resolve a job's class, queue and request) and for the pools (to
build the policy's snapshot). ``signature`` is a cheap check of whether any of
them changed, so a pool reloads only then.

``resolve_submit`` applies the catalog to one job's submit arguments:

- ``queue``: the queue's priority and priority class, unless given;
- ``resource_class``: its cpus, memory, GPUs and storage, unless given;
- ``priority_class``: must exist (else an error listing the classes); the
  ``global_default`` class when none is named; the class's ``value`` is the
  job's priority unless ``priority`` is given.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from .classes import NamedQueue, PriorityClass, ResourceClass
from .limits import ResourceQuota
from .requests import job_row, submit_args
from .scaling import AutoscalingPolicy

__all__ = [
    "POLICY_KINDS",
    "Catalog",
    "load_catalog",
    "resolve_submit",
    "signature",
    "submit_rows",
]

#: definition kind -> the class its specs are
POLICY_KINDS: dict[str, Any] = {
    "quota": ResourceQuota,
    "priority_class": PriorityClass,
    "queue": NamedQueue,
    "resource_class": ResourceClass,
    "autoscaling": AutoscalingPolicy,
}
_ATTR = {
    "quota": "quotas",
    "priority_class": "priority_classes",
    "queue": "queues",
    "resource_class": "resource_classes",
    "autoscaling": "autoscaling",
}
#: what a submit may name
SUBMIT_KINDS = ("priority_class", "queue", "resource_class")
_LATEST = (
    "SELECT d.kind, d.name, d.spec FROM definitions d"
    " WHERE d.kind IN ({kinds}) AND d.deleted_at IS NULL AND d.version ="
    " (SELECT max(m.version) FROM definitions m WHERE m.kind = d.kind"
    " AND m.namespace = d.namespace AND m.name = d.name)"
)


@dataclass(slots=True)
class Catalog:
    """The resource policy in force (``quotas`` by the namespace they limit)."""

    quotas: dict[str, ResourceQuota] = field(default_factory=dict)
    priority_classes: dict[str, PriorityClass] = field(default_factory=dict)
    queues: dict[str, NamedQueue] = field(default_factory=dict)
    resource_classes: dict[str, ResourceClass] = field(default_factory=dict)
    autoscaling: dict[str, AutoscalingPolicy] = field(default_factory=dict)

    def add(self, kind: str, obj: Any) -> None:
        """Put ``obj`` (of definition ``kind``) in force, replacing its name's."""
        if kind == "quota":
            for ns, quota in list(self.quotas.items()):
                if quota.name == obj.name:  # a quota moved to another namespace
                    del self.quotas[ns]
            self.quotas.setdefault(obj.namespace, obj)
        else:
            getattr(self, _ATTR[kind])[obj.name] = obj

    def names(self, kind: str) -> list[str]:
        """The names of the ``kind`` definitions in force."""
        return sorted(obj.name for obj in getattr(self, _ATTR[kind]).values())

    @property
    def default_class(self) -> PriorityClass | None:
        for pc in self.priority_classes.values():
            if pc.global_default:
                return pc
        return None


def load_catalog(db: Any, kinds: tuple[str, ...] = tuple(POLICY_KINDS)) -> Catalog:
    """The latest live definitions of ``kinds`` (``db``: a ``Database`` or a
    connection). A spec that no longer parses (written by another version) is
    skipped rather than stopping every pool."""
    sql = _LATEST.format(kinds=",".join("?" * len(kinds)))
    if isinstance(db, sqlite3.Connection):
        rows = db.execute(sql, kinds).fetchall()
    else:
        rows = db.query(sql, kinds)
    catalog = Catalog()
    for kind, name, spec in rows:
        try:
            obj = POLICY_KINDS[kind].from_spec(name, json.loads(spec))
        except (ConfigError, ValueError):
            continue
        catalog.add(kind, obj)
    return catalog


def signature(db: Any) -> tuple[Any, ...]:
    """Changes whenever a policy definition is created, changed or deleted."""
    kinds = tuple(POLICY_KINDS)
    marks = ",".join("?" * len(kinds))
    sql = f"SELECT max(id), count(deleted_at) FROM definitions WHERE kind IN ({marks})"
    return tuple(db.query(sql, kinds)[0])


def resolve_submit(spec: Mapping[str, Any], catalog: Catalog) -> dict[str, Any]:
    """``spec`` (submit arguments) with its queue, resource class and priority
    class applied (see the module docstring); ``queue`` and ``resource_class``
    are consumed."""
    out = dict(spec)
    queue_name = out.pop("queue", None)
    if queue_name is not None:
        queue = catalog.queues.get(queue_name)
        if queue is None:
            raise _unknown("queue", queue_name, catalog.queues)
        if out.get("priority") is None:
            out["priority"] = queue.priority
        if out.get("priority_class") is None:
            out["priority_class"] = queue.priority_class
    rc_name = out.pop("resource_class", None)
    if rc_name is not None:
        rc = catalog.resource_classes.get(rc_name)
        if rc is None:
            raise _unknown("resource_class", rc_name, catalog.resource_classes)
        for key, value in rc.request().items():
            if out.get(key) is None:
                out[key] = value
    name = out.get("priority_class")
    pc = catalog.default_class if name is None else catalog.priority_classes.get(name)
    if name is not None and pc is None:
        raise _unknown("priority_class", name, catalog.priority_classes)
    if pc is not None:
        out["priority_class"] = pc.name
        if out.get("priority") is None:
            out["priority"] = pc.value
    return out


def _unknown(what: str, name: str, known: Mapping[str, Any]) -> ConfigError:
    if not known:
        return ConfigError(f"{what} {name!r} does not exist: none is defined")
    return ConfigError.choice(what, name, sorted(known))


def submit_rows(
    db: Any, now: float, jobs: Iterable[Mapping[str, Any]]
) -> list[tuple[Any, ...]]:
    """The ``INSERT_SQL`` rows of ``jobs`` (dicts of ``submit_job`` arguments),
    their classes and queues resolved against the db's policy (one read)."""
    specs = [submit_args(spec) for spec in jobs]
    if not specs:
        return []
    catalog = load_catalog(db, SUBMIT_KINDS)
    return [job_row(now, **resolve_submit(spec, catalog)) for spec in specs]
