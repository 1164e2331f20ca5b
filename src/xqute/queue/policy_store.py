"""Reading the resource policy from the db: quotas, priority classes, named
queues, resource classes and autoscaling policies, stored as definitions (the
orchestration layer writes them; see orchestration/resource_api.py).

``load_catalog`` reads the latest live version of each, without pydantic, for
the pools (to build the policy's snapshot), the API and the CLI. ``signature``
is a cheap check of whether any of them changed, so a pool reloads only then.
(``submit`` reads what it needs as JSON: ``submit_policy.py``.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from .classes import NamedQueue, PriorityClass, ResourceClass
from .limits import ResourceQuota
from .scaling import AutoscalingPolicy
from .submit_policy import rows

__all__ = ["POLICY_KINDS", "Catalog", "load_catalog", "signature"]

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
    catalog = Catalog()
    for kind, name, spec in rows(db, kinds):
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
