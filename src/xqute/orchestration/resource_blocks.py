"""The resource policy's YAML blocks of ``xqute apply``: one function per block,
called by ``apply.py`` (registered in its ``BLOCKS`` and ``SCHEDULER_KEYS``).

```yaml
scheduler:
  queues:
    - {name: default, priority: 0}
    - {name: high-priority, priority: 100, priority_class: high-priority}
resources:
  classes:
    standard: {cpu: 1, memory: 4Gi}
  quotas:
    team-quota: {namespace: team-a, cpu: 32, memory: 128Gi, gpu: 4, storage: 1Ti,
                 jobs: 200, scopes: [job, workflow], cohort: shared,
                 borrowing_limit: {cpu: 8}}
  priority_classes:
    high-priority: {value: 1000, preemption_policy: preempt_lower_priority}
    batch: {value: 0, global_default: true, preemptible: true, min_runtime: 10m,
            grace_period: 30s, max_preemptions: 3, on_preempt: requeue}
  auto_scaling:            # the seed's shorthand: one cpu policy on the default pool
    enabled: true          # false: policy "default" and those below are deleted
    min_nodes: 1
    max_nodes: 10
    target_cpu_utilization: 70
    policies:
      workflow-scaling: {target: {pool: default}, metrics: [...], ...}
```

Each block parses its items into the policy objects (errors go to the plan's
problems with their place in the file); ``check`` applies the rules across
definitions to the file together with the db (a namespace has one quota, one
default class, a queue's class exists); ``store`` writes them in apply's
transaction; ``preview`` says what ``--dry-run`` would change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..queue.classes import NamedQueue, PriorityClass, ResourceClass
from ..queue.db import Database
from ..queue.limits import ResourceQuota
from ..queue.policy_store import load_catalog
from ..queue.scaling import AutoscalingPolicy, ResourceUtilization
from . import definitions as defs
from . import events
from .resource_api import (
    CLUSTER_NAMESPACE,
    check_policy,
    kind_of,
    namespace_of,
    put_policy,
)

__all__ = ["check", "preview", "queues_block", "resources_block", "store"]

Path_ = tuple[Any, ...]


def _add(plan: Any, path: Path_, make: Any) -> None:
    try:
        plan.policies.append((make(), path))
    except ConfigError as exc:
        plan.problems.append((path, str(exc)))


def _named(value: Any, plan: Any, path: Path_, cls: Any) -> None:
    """A map of name -> fields."""
    if not isinstance(value, Mapping):
        plan.problems.append((path, "must be a map of name: fields"))
        return
    for name, spec in value.items():
        _add(plan, (*path, name), lambda n=name, s=spec: cls.from_spec(str(n), s))


def queues_block(value: Any, plan: Any, path: Path_) -> None:
    """``scheduler.queues``: a list of ``{name, priority, priority_class}``."""
    if not isinstance(value, list):
        plan.problems.append((path, "must be a list of {name, priority}"))
        return
    for i, item in enumerate(value):
        if not isinstance(item, Mapping) or "name" not in item:
            plan.problems.append(((*path, i), "must be a map with a name"))
            continue
        name, spec = str(item["name"]), {k: v for k, v in item.items() if k != "name"}
        _add(plan, (*path, i), lambda n=name, s=spec: NamedQueue.from_spec(n, s))


def _auto_scaling(value: Any, plan: Any, path: Path_) -> None:
    if not isinstance(value, Mapping):
        plan.problems.append((path, "must be a map"))
        return
    shorthand = {"min_nodes", "max_nodes", "target_cpu_utilization"}
    known = {"enabled", "policies", *shorthand}
    for key in value:
        if key not in known:
            plan.problems.append(
                (
                    (*path, key),
                    f"unknown key {key!r}; allowed: {', '.join(sorted(known))}",
                )
            )
    if value.get("enabled", True) is False:  # autoscaling off: delete them
        named = value.get("policies")
        names = ["default", *(named if isinstance(named, Mapping) else ())]
        plan.disabled += [("autoscaling", str(name)) for name in names]
        return
    if shorthand & set(value):

        def default() -> AutoscalingPolicy:
            return AutoscalingPolicy(
                name="default",
                target="pool:default",
                metrics=[ResourceUtilization(
                    "cpu", value.get("target_cpu_utilization", 70))],
                min_replicas=value.get("min_nodes", 1),
                max_replicas=value.get("max_nodes", value.get("min_nodes", 1)),
            )  # fmt: skip

        _add(plan, path, default)
    if "policies" in value:
        _named(value["policies"], plan, (*path, "policies"), AutoscalingPolicy)


_RESOURCE_KEYS: dict[str, Any] = {
    "classes": lambda v, plan, path: _named(v, plan, path, ResourceClass),
    "quotas": lambda v, plan, path: _named(v, plan, path, ResourceQuota),
    "priority_classes": lambda v, plan, path: _named(v, plan, path, PriorityClass),
    "auto_scaling": _auto_scaling,
}


def resources_block(value: Any, plan: Any, path: Path_) -> None:
    """The ``resources`` block: classes, quotas, priority classes, autoscaling."""
    if not isinstance(value, Mapping):
        plan.problems.append((path, "must be a map"))
        return
    for key, sub in value.items():
        handler = _RESOURCE_KEYS.get(key)
        if handler is None:
            allowed = ", ".join(sorted(_RESOURCE_KEYS))
            plan.problems.append(
                ((*path, key), f"unknown key {key!r}; allowed: {allowed}")
            )
        else:
            handler(sub, plan, (*path, key))


def check(db: Database, plan: Any) -> None:
    """The rules across definitions, on the db's policy with the file's in it;
    twice the same name in the file is an error too."""
    catalog = load_catalog(db)
    seen: dict[tuple[str, str], Path_] = {}
    for obj, path in plan.policies:
        key = (kind_of(obj), obj.name)
        if key in seen:
            plan.problems.append((path, f"{key[0]} {obj.name!r} is defined twice"))
            continue
        seen[key] = path
        catalog.add(key[0], obj)
    for obj, path in plan.policies:
        try:
            check_policy(obj, catalog)
        except ConfigError as exc:
            plan.problems.append((path, str(exc)))


def store(conn: Any, plan: Any, now: float) -> list[tuple[Any, ...]]:
    """Store each in apply's transaction (and delete the ones turned off):
    (kind, name, namespace, action, version) of each (``apply.Change``'s
    fields)."""
    out = []
    for obj, _ in plan.policies:
        info = put_policy(conn, obj, now)
        action = "unchanged"
        if info.changed:
            action = "created" if info.version == 1 else "updated"
        out.append((info.kind, info.name, info.namespace, action, info.version))
    for kind, name in plan.disabled:
        row = defs.get(conn, kind, name, CLUSTER_NAMESPACE)
        if row is not None and defs.delete(conn, kind, name, now, CLUSTER_NAMESPACE):
            events.append(conn, "definition.deleted", now, namespace=CLUSTER_NAMESPACE,
                          data={"kind": kind, "name": name})  # fmt: skip
            out.append((kind, name, CLUSTER_NAMESPACE, "deleted", row.version))
    return out


def preview(db: Database, plan: Any) -> list[tuple[Any, ...]]:
    """What ``store`` would do, without storing (with a diff of what changes)."""
    out = []
    for obj, _ in plan.policies:
        kind, ns = kind_of(obj), namespace_of(obj)
        action, version, diff = defs.preview(db, kind, obj.name, obj.to_spec(), ns)
        out.append((kind, obj.name, ns, action, version, diff))
    for kind, name in plan.disabled:
        row = defs.get(db, kind, name, CLUSTER_NAMESPACE)
        if row is not None:
            out.append((kind, name, CLUSTER_NAMESPACE, "deleted", row.version, ""))
    return out
