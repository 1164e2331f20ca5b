"""The resource-policy methods of ``Orchestrator`` (a base class of it): thin
calls into ``resource_api`` and ``resource_report`` on the orchestrator's db.
See docs/resources.md."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..queue.classes import NamedQueue, PriorityClass, ResourceClass
from ..queue.db import Database
from ..queue.limits import ResourceQuota
from ..queue.policy_store import Catalog
from ..queue.scaling import AutoscalingPolicy
from . import resource_api as api
from .catalog import DefinitionInfo
from .resource_report import resource_usage

__all__ = ["RESOURCE_METHODS", "ResourceMethods"]

#: the methods below (``AsyncOrchestrator`` has them as coroutines)
RESOURCE_METHODS = (
    "create_resource_quota",
    "create_priority_class",
    "create_queue",
    "create_resource_class",
    "configure_autoscaling",
    "get_resource_policy",
    "delete_resource_policy",
    "get_resource_usage",
)


class ResourceMethods:
    """Quotas, priority classes, named queues, resource classes, autoscaling."""

    db: Database

    def create_resource_quota(
        self, quota: ResourceQuota | Mapping[str, Any]
    ) -> DefinitionInfo:
        """Store a namespace's quota (a new version if it changed)."""
        return api.create_resource_quota(self.db, quota)

    def create_priority_class(
        self, pc: PriorityClass | Mapping[str, Any]
    ) -> DefinitionInfo:
        return api.create_priority_class(self.db, pc)

    def create_queue(self, queue: NamedQueue | Mapping[str, Any]) -> DefinitionInfo:
        return api.create_named_queue(self.db, queue)

    def create_resource_class(
        self, rc: ResourceClass | Mapping[str, Any]
    ) -> DefinitionInfo:
        return api.create_resource_class(self.db, rc)

    def configure_autoscaling(
        self, policy: AutoscalingPolicy | Mapping[str, Any]
    ) -> DefinitionInfo:
        return api.configure_autoscaling(self.db, policy)

    def get_resource_policy(self) -> Catalog:
        """Every quota, class, queue and autoscaling policy in force."""
        return api.list_policies(self.db)

    def delete_resource_policy(self, kind: str, name: str) -> None:
        """``kind``: quota, priority_class, queue, resource_class, autoscaling."""
        api.delete_policy(self.db, kind, name)

    def get_resource_usage(self, namespace: str | None = None) -> dict[str, Any]:
        """Capacity, allocated and quota per namespace, pending demand, classes,
        recent preemptions, autoscalers (``resource_report.py``)."""
        return resource_usage(self.db, namespace)
