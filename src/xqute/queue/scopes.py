"""Quota scopes: which of a namespace's jobs its quota counts.

``scopes=["job"]`` counts plain jobs (submitted ones, and runs of defined
jobs), ``["workflow"]`` workflow tasks, both (the default) every job. For the
policy, a job outside its namespace quota's scopes is keyed ``NS/SCOPE``: a
namespace of its own that has no quota, so it neither counts nor waits. Only
namespaces whose quota names one scope pay for this (the lookup of a job's run
kind is in the SQL of the reads that need it).
"""

from __future__ import annotations

from collections.abc import Mapping

from .limits import SCOPES, ResourceQuota

__all__ = ["SCOPE_SQL", "scope_key", "scoped"]

#: a job_queue row's scope, as an SQL expression
SCOPE_SQL = (
    "CASE WHEN run_id IS NULL THEN 'job' ELSE"
    " coalesce((SELECT kind FROM runs WHERE runs.id = job_queue.run_id), 'workflow')"
    " END"
)


def scoped(quotas: Mapping[str, ResourceQuota]) -> dict[str, tuple[str, ...]]:
    """The namespaces whose quota counts only some scopes, with those."""
    return {
        ns: tuple(q.scopes) for ns, q in quotas.items() if set(q.scopes) != set(SCOPES)
    }


def scope_key(
    namespace: str, scope: str | None, scopes: Mapping[str, tuple[str, ...]]
) -> str:
    """The namespace the policy sees a job in (see the module docstring)."""
    counted = scopes.get(namespace)
    if counted is None or scope is None or scope in counted:
        return namespace
    return f"{namespace}/{scope}"
