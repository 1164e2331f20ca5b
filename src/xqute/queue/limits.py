"""``ResourceQuota`` and ``ResourceLimits``: what the running jobs of one
namespace may hold at once, as users write it.

```python
ResourceQuota(name="team-quota", namespace="team-a",
              limits=ResourceLimits(cpu=32, memory="128G", gpu=4, storage="1T",
                                    jobs=200),
              scopes=["job", "workflow"], cohort="shared",
              borrowing_limit=ResourceLimits(cpu=8))
```

A namespace has at most one quota. ``cohort``: namespaces whose quotas name
the same cohort lend each other their idle quota; ``borrowing_limit`` caps how
far above its own limits this namespace may go on it (no cap when not given).
Jobs started on borrowed quota are reclaimable (see ``quota.py``).
``scopes``: which jobs count: plain jobs (``job``: submitted, or runs of a
defined job) and workflow tasks (``workflow``).

``to_quota()`` is the policy's plain ``Quota``; ``to_spec``/``from_spec`` the
JSON stored as a definition of kind ``quota`` (and the YAML block
``resources.quotas``, where the limits may also be written flat).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..units import format_mem_mb, parse_mem_mb
from .classes import check_number
from .quota import Limits, Quota
from .requests import check_name

__all__ = ["SCOPES", "ResourceLimits", "ResourceQuota"]

SCOPES = ("job", "workflow")
_LIMIT_KEYS = ("cpu", "memory", "gpu", "storage", "jobs")


@dataclass(frozen=True)
class ResourceLimits:
    """Caps per resource; None: no cap. Memory and storage: MB or ``"4G"``."""

    cpu: float | None = None
    memory: int | str | None = None
    gpu: int | None = None
    storage: int | str | None = None
    jobs: int | None = None

    def __post_init__(self) -> None:
        if self.cpu is not None:
            check_number("cpu", self.cpu, 0)
        for key in ("gpu", "jobs"):
            if getattr(self, key) is not None:
                check_number(key, getattr(self, key), 0, integer=True)
        for key in ("memory", "storage"):
            value = getattr(self, key)
            if value is not None:
                object.__setattr__(self, key, parse_mem_mb(value, key))

    def to_limits(self) -> Limits:
        return Limits(self.cpu, self.memory, self.gpu, self.storage, self.jobs)  # type: ignore[arg-type]

    def to_spec(self) -> dict[str, Any]:
        values = {k: getattr(self, k) for k in _LIMIT_KEYS}
        return {k: v for k, v in values.items() if v is not None}

    @classmethod
    def from_spec(cls, spec: Any, where: str) -> ResourceLimits:
        if isinstance(spec, ResourceLimits):
            return spec
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}: {spec!r} must be a mapping of limits")
        for key in spec:
            if key not in _LIMIT_KEYS:
                raise ConfigError.choice(f"{where}: key", key, _LIMIT_KEYS)
        try:
            return cls(**spec)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    def describe(self) -> str:
        """``cpu 32, memory 128G, jobs 200`` (for listings)."""
        parts = []
        for key in _LIMIT_KEYS:
            value = getattr(self, key)
            if value is None:
                continue
            mem = key in ("memory", "storage")
            parts.append(f"{key} {format_mem_mb(value) if mem else f'{value:g}'}")
        return ", ".join(parts) or "no limits"


@dataclass(frozen=True)
class ResourceQuota:
    """The quota of one namespace (see the module docstring)."""

    name: str
    namespace: str = "default"
    limits: ResourceLimits = ResourceLimits()
    scopes: Sequence[str] = SCOPES
    cohort: str | None = None
    borrowing_limit: ResourceLimits | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        check_name("quota name", self.name)
        check_name("namespace", self.namespace)
        set_(self, "limits", ResourceLimits.from_spec(self.limits, "limits"))
        scopes = (self.scopes,) if isinstance(self.scopes, str) else self.scopes
        scopes = tuple(scopes)
        if not scopes or any(s not in SCOPES for s in scopes):
            raise ConfigError(
                f"scopes {list(scopes)!r} must be one or more of {', '.join(SCOPES)}"
            )
        set_(self, "scopes", tuple(s for s in SCOPES if s in scopes))
        if self.cohort is not None:
            check_name("cohort", self.cohort)
        if self.borrowing_limit is not None:
            if self.cohort is None:
                raise ConfigError("borrowing_limit needs a cohort to borrow from")
            borrow = ResourceLimits.from_spec(self.borrowing_limit, "borrowing_limit")
            set_(self, "borrowing_limit", borrow)

    def to_quota(self) -> Quota:
        """The policy's view (``policy.decide`` input)."""
        limits = self.limits.to_limits()
        borrow = self.borrowing_limit.to_limits() if self.borrowing_limit else Limits()
        return Quota(*limits, cohort=self.cohort, borrowing_limit=borrow)

    def to_spec(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "limits": self.limits.to_spec(),
            "scopes": list(self.scopes),
            "cohort": self.cohort,
            "borrowing_limit": (
                None if self.borrowing_limit is None else self.borrowing_limit.to_spec()
            ),
        }

    @classmethod
    def from_spec(cls, name: str, spec: Any, where: str = "") -> ResourceQuota:
        """From stored JSON or a YAML block, where limits may be flat
        (``{namespace: team-a, cpu: 32, memory: 128Gi}``)."""
        where = where or f"quota {name!r}"
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}: {spec!r} must be a mapping")
        spec = dict(spec)
        flat = {k: spec.pop(k) for k in _LIMIT_KEYS if k in spec}
        if flat and "limits" in spec:
            raise ConfigError(
                f"{where}: give the limits flat or under 'limits:', not both"
            )
        spec.setdefault("limits", flat)
        known = ("namespace", "limits", "scopes", "cohort", "borrowing_limit")
        for key in spec:
            if key not in known:
                raise ConfigError.choice(f"{where}: key", key, known + _LIMIT_KEYS)
        try:
            return cls(name=name, **spec)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
