"""Creating, listing and deleting the resource policy: quotas, priority
classes, named queues, resource classes and autoscaling policies.

The ``Orchestrator`` methods ``create_resource_quota``,
``create_priority_class``, ``configure_autoscaling`` (and the CLI and
``xqute apply``) call these. Each is stored as a versioned definition
(``definitions.put``: a new version only if it changed) with a
``definition.created|updated|deleted`` event, in one transaction; the pools
pick the change up at their next cycle (``policy_store.signature``).

Rules checked here, against what is stored:

- a namespace has at most one quota (a second name is an error naming the
  first one; replace it by its own name); a quota's name is unique: stored
  with another namespace, the quota moves there;
- at most one priority class is the ``global_default``;
- a named queue's priority class must exist.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError, DefinitionNotFoundError
from ..queue.classes import NamedQueue, PriorityClass, ResourceClass
from ..queue.db import Database
from ..queue.limits import ResourceQuota
from ..queue.policy_store import POLICY_KINDS, Catalog, load_catalog
from ..queue.scaling import AutoscalingPolicy
from ..queue.wake import notify
from . import definitions as defs
from . import events
from .catalog import DefinitionInfo

__all__ = [
    "CLUSTER_NAMESPACE",
    "check_policy",
    "coerce",
    "configure_autoscaling",
    "create_named_queue",
    "create_priority_class",
    "create_resource_class",
    "create_resource_quota",
    "delete_policy",
    "kind_of",
    "list_policies",
    "namespace_of",
    "put_policy",
    "store_policy",
]

#: where cluster-scoped kinds (all but quotas) are stored
CLUSTER_NAMESPACE = "default"
_KIND_OF = {cls: kind for kind, cls in POLICY_KINDS.items()}


def coerce(cls: Any, value: Any) -> Any:
    """A policy object from itself or a dict (``{"name": ..., **spec}``)."""
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        spec = dict(value)
        name = spec.pop("name", None)
        if name is None:
            raise ConfigError(f"{_KIND_OF[cls]} {value!r} has no name")
        return cls.from_spec(name, spec)
    raise ConfigError(f"{value!r} is not a {cls.__name__} (nor a dict of one)")


def check_policy(obj: Any, catalog: Catalog) -> None:
    """The rules across definitions (module docstring); ``ConfigError``."""
    if isinstance(obj, ResourceQuota):
        other = catalog.quotas.get(obj.namespace)
        if other is not None and other.name != obj.name:
            raise ConfigError(
                f"namespace {obj.namespace!r} has quota {other.name!r} already;"
                f" change that one, or delete it first (a namespace has one quota)"
            )
    elif isinstance(obj, PriorityClass) and obj.global_default:
        for pc in catalog.priority_classes.values():
            if pc.global_default and pc.name != obj.name:
                raise ConfigError(
                    f"priority class {pc.name!r} is the global default already;"
                    " only one class can be"
                )
    elif (
        isinstance(obj, NamedQueue)
        and obj.priority_class is not None
        and obj.priority_class not in catalog.priority_classes
    ):
        raise ConfigError.choice(
            f"queue {obj.name!r}: priority_class",
            obj.priority_class,
            sorted(catalog.priority_classes),
        )


def kind_of(obj: Any) -> str:
    """The definition kind of a policy object."""
    return _KIND_OF[type(obj)]


def namespace_of(obj: Any) -> str:
    """Where a policy object is stored (a quota in the namespace it limits)."""
    return obj.namespace if isinstance(obj, ResourceQuota) else CLUSTER_NAMESPACE


def put_policy(conn: Any, obj: Any, now: float) -> DefinitionInfo:
    """Store ``obj`` as the latest version of its definition (with its event),
    inside the caller's transaction; unchecked (see ``check_policy``). A quota
    is known by its name: given another namespace, it moves there (its
    definition in the namespace it limited is deleted)."""
    kind, namespace = kind_of(obj), namespace_of(obj)
    if kind == "quota":
        moved = conn.execute(
            "UPDATE definitions SET deleted_at = ? WHERE kind = 'quota' AND name = ?"
            " AND namespace != ? AND deleted_at IS NULL RETURNING namespace",
            (now, obj.name, namespace),
        ).fetchall()
        for (old,) in set(moved):
            events.append(conn, "definition.deleted", now, namespace=old,
                          data={"kind": kind, "name": obj.name})  # fmt: skip
    row, changed = defs.put(conn, kind, obj.name, obj.to_spec(), now, namespace)
    if changed:
        events.append(
            conn,
            f"definition.{'created' if row.version == 1 else 'updated'}",
            now,
            namespace=namespace,
            data={"kind": kind, "name": obj.name, "version": row.version},
        )
    return DefinitionInfo(kind, obj.name, namespace, row.version, row.id, changed)


def store_policy(db: Database, obj: Any, now: float | None = None) -> DefinitionInfo:
    """Check ``obj`` (a quota, class, queue or policy) against what is stored
    and store it as the latest version of its definition."""
    now = time.time() if now is None else now

    def write(conn: Any) -> DefinitionInfo:
        check_policy(obj, load_catalog(conn))
        return put_policy(conn, obj, now)

    info = db.write(write)
    if info.changed:
        notify(db.path)  # pools re-read the policy at once
    return info


def create_resource_quota(
    db: Database, quota: ResourceQuota | Mapping
) -> DefinitionInfo:
    return store_policy(db, coerce(ResourceQuota, quota))


def create_priority_class(db: Database, pc: PriorityClass | Mapping) -> DefinitionInfo:
    return store_policy(db, coerce(PriorityClass, pc))


def create_named_queue(db: Database, queue: NamedQueue | Mapping) -> DefinitionInfo:
    return store_policy(db, coerce(NamedQueue, queue))


def create_resource_class(db: Database, rc: ResourceClass | Mapping) -> DefinitionInfo:
    return store_policy(db, coerce(ResourceClass, rc))


def configure_autoscaling(
    db: Database, policy: AutoscalingPolicy | Mapping
) -> DefinitionInfo:
    return store_policy(db, coerce(AutoscalingPolicy, policy))


def list_policies(db: Database) -> Catalog:
    """Everything in force (quotas by namespace, the rest by name)."""
    return load_catalog(db)


def delete_policy(db: Database, kind: str, name: str) -> None:
    """Delete a quota (by its name), class, queue or autoscaling policy."""
    if kind not in POLICY_KINDS:
        raise ConfigError.choice("kind", kind, list(POLICY_KINDS))
    now = time.time()
    catalog = load_catalog(db, (kind,))
    namespace = CLUSTER_NAMESPACE
    if kind == "quota":
        found = [q for q in catalog.quotas.values() if q.name == name]
        namespace = found[0].namespace if found else CLUSTER_NAMESPACE

    def write(conn: Any) -> bool:
        gone = defs.delete(conn, kind, name, now, namespace)
        if gone:
            events.append(conn, "definition.deleted", now, namespace=namespace,
                          data={"kind": kind, "name": name})  # fmt: skip
        return gone

    if not db.write(write):
        known = catalog.names(kind)
        raise DefinitionNotFoundError(
            f"no {kind.replace('_', ' ')} {name!r}; known: {', '.join(known) or 'none'}"
        )
    notify(db.path)
