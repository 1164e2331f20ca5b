"""Namespace quotas as the dispatch decision sees them: plain data and a ledger.

A quota caps what the *running* jobs of one namespace hold at once, across all
pools of the db: cpus, memory, GPUs, storage (as declared by the jobs) and the
number of jobs. A job whose start would take its namespace over a limit waits,
with a reason naming the resource and the sums ("quota team-a: cpu 30+4 > 32").

Cohorts (Kueue's idea): namespaces whose quotas name the same ``cohort`` lend
each other their idle quota. A namespace over its own limit may still start a
job when the cohort as a whole stays within the sum of its members' limits and
the namespace's excess stays within its ``borrowing_limit``. A namespace whose
running jobs exceed its own limits is *borrowing*; its jobs are reclaimable:
a lender of the cohort that needs its quota back may preempt them.

``QuotaBook`` is the ledger one ``decide`` call keeps: it starts from the usage
of every namespace and adds what the decision starts or reserves. It does no
I/O; every figure it compares is in the snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["Amounts", "Limits", "Quota", "QuotaBook"]

#: how each resource is named in reasons, in ``Amounts`` order
RESOURCE_NAMES = ("cpu", "mem", "gpu", "storage", "jobs")


class Amounts(NamedTuple):
    """Resources held or asked for (one running job counts ``jobs=1``)."""

    cpus: float = 0
    mem_mb: int = 0
    gpus: int = 0
    storage_mb: int = 0
    jobs: int = 0


class Limits(NamedTuple):
    """Caps per resource, ``None`` for no cap (in ``Amounts`` order)."""

    cpus: float | None = None
    mem_mb: int | None = None
    gpus: int | None = None
    storage_mb: int | None = None
    jobs: int | None = None


NO_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Quota:
    """What the running jobs of one namespace may hold at once.

    ``cohort``: lend and borrow idle quota among the namespaces of this cohort;
    ``borrowing_limit``: how far above its own limits this namespace may go on
    borrowed quota, per resource (``None``: as far as the cohort has idle).
    """

    cpus: float | None = None
    mem_mb: int | None = None
    gpus: int | None = None
    storage_mb: int | None = None
    jobs: int | None = None
    cohort: str | None = None
    borrowing_limit: Limits = NO_LIMITS

    @property
    def limits(self) -> Limits:
        return Limits(self.cpus, self.mem_mb, self.gpus, self.storage_mb, self.jobs)


def _add(a: Iterable[float], b: Iterable[float], sign: int = 1) -> list[float]:
    return [x + sign * y for x, y in zip(a, b, strict=True)]


def _fmt(index: int, value: float) -> str:
    return f"{value:g}M" if index in (1, 3) else f"{value:g}"


class QuotaBook:
    """The quota ledger of one decision (see the module docstring).

    ``usage``: what the running jobs of each namespace hold now (all pools).
    Only namespaces with a quota are tracked; the others have no limit.
    """

    __slots__ = (
        "_cache",
        "_cohort_limit",
        "_cohorts",
        "_limits",
        "_running",
        "quotas",
        "used",
    )

    def __init__(
        self, quotas: Mapping[str, Quota], usage: Mapping[str, Amounts]
    ) -> None:
        self.quotas = quotas
        self.used: dict[str, list[float]] = {
            ns: list(usage.get(ns, Amounts())) for ns in quotas
        }
        self._running = usage
        self._limits = {ns: quota.limits for ns, quota in quotas.items()}
        #: ns -> request -> answer, until the namespace (or its cohort) takes more
        self._cache: dict[str, dict[Amounts, tuple[str | None, bool]]] = {}
        self._cohorts: dict[str, list[str]] = {}
        for ns, quota in quotas.items():
            if quota.cohort is not None:
                self._cohorts.setdefault(quota.cohort, []).append(ns)
        # a cohort's nominal quota per resource: the sum of its members' limits
        # (None when a member has no limit on it: that resource is not lent)
        self._cohort_limit: dict[str, list[float | None]] = {}
        for cohort, members in self._cohorts.items():
            sums: list[float | None] = []
            for i in range(len(RESOURCE_NAMES)):
                values = [quotas[m].limits[i] for m in members]
                sums.append(None if None in values else sum(values))  # type: ignore[arg-type]
            self._cohort_limit[cohort] = sums

    def check(
        self,
        ns: str,
        req: Amounts,
        freed: Mapping[str, Amounts] | None = None,
    ) -> tuple[str | None, bool]:
        """Whether ``req`` fits the quota of ``ns``: (None, borrowed) if it does
        (``borrowed``: only on the cohort's idle quota), else (the reason, False).

        ``freed``: amounts to count as released per namespace (the jobs a
        preemption would end).
        """
        quota = self.quotas.get(ns)
        if quota is None:
            return None, False
        if not freed:
            known = self._cache.setdefault(ns, {})
            if req not in known:
                known[req] = self._check(ns, quota, req, None)
            return known[req]
        return self._check(ns, quota, req, freed)

    def _check(
        self,
        ns: str,
        quota: Quota,
        req: Amounts,
        freed: Mapping[str, Amounts] | None,
    ) -> tuple[str | None, bool]:
        used = self.used[ns]
        if freed and ns in freed:
            used = _add(used, freed[ns], -1)
        limits = self._limits[ns]
        over: list[int] = []
        for i, limit in enumerate(limits):
            if limit is not None and req[i] and used[i] + req[i] > limit:
                over.append(i)
        if not over:
            return None, False
        reason = "quota {}: {}".format(
            ns,
            ", ".join(
                f"{RESOURCE_NAMES[i]} {_fmt(i, used[i])}+{_fmt(i, req[i])}"
                f" > {_fmt(i, limits[i])}"  # type: ignore[arg-type]
                for i in over
            ),
        )
        cohort = quota.cohort
        if cohort is None:
            return reason, False
        cohort_used = self._cohort_used(cohort, freed)
        cohort_limit = self._cohort_limit[cohort]
        for i in over:
            cap = quota.borrowing_limit[i]
            excess = used[i] + req[i] - limits[i]  # type: ignore[operator]
            if cap is not None and excess > cap:
                return f"{reason} (borrowing limit {_fmt(i, cap)})", False
            total = cohort_limit[i]
            if total is None or cohort_used[i] + req[i] > total:
                return f"{reason} (cohort {cohort} has no idle quota)", False
        return None, True

    def _cohort_used(
        self, cohort: str, freed: Mapping[str, Amounts] | None
    ) -> list[float]:
        total = [0.0] * len(RESOURCE_NAMES)
        for member in self._cohorts[cohort]:
            total = _add(total, self.used[member])
            if freed and member in freed:
                total = _add(total, freed[member], -1)
        return total

    def take(self, ns: str, req: Amounts) -> None:
        """Count ``req`` as held by ``ns`` (a job started, or reserved)."""
        if ns in self.used:
            self.used[ns] = _add(self.used[ns], req)
            cohort = self.quotas[ns].cohort
            for member in self._cohorts[cohort] if cohort is not None else (ns,):
                self._cache.pop(member, None)

    def borrowing(self, ns: str) -> bool:
        """Whether the running jobs of ``ns`` exceed its own limits (what this
        decision starts or reserves does not count: those are not victims)."""
        quota = self.quotas.get(ns)
        if quota is None or quota.cohort is None:
            return False
        used = self._running.get(ns, Amounts())
        return any(
            limit is not None and used[i] > limit
            for i, limit in enumerate(quota.limits)
        )

    @property
    def has_cohorts(self) -> bool:
        return bool(self._cohorts)

    def cohort_of(self, ns: str) -> str | None:
        quota = self.quotas.get(ns)
        return None if quota is None else quota.cohort

    def lenders_need(self, ns: str, req: Amounts) -> bool:
        """Whether a job of ``ns`` asking ``req`` is within its namespace's own
        limits: a lender taking its quota back, which may reclaim borrowed
        capacity."""
        quota = self.quotas.get(ns)
        if quota is None or quota.cohort is None:
            return False
        used = self.used[ns]
        return all(
            limit is None or used[i] + req[i] <= limit
            for i, limit in enumerate(quota.limits)
        )


def usage_of(jobs: Iterable[tuple[str, Amounts]]) -> dict[str, Amounts]:
    """Sum (namespace, amounts) pairs per namespace."""
    out: dict[str, list[float]] = {}
    for ns, amounts in jobs:
        out[ns] = _add(out.get(ns, [0] * len(RESOURCE_NAMES)), amounts)
    return {ns: Amounts(*values) for ns, values in out.items()}
