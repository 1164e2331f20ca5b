"""Priority classes, named queues and resource classes: what a job may name at
submit instead of spelling out its priority and request.

```python
PriorityClass(name="high-priority", value=1000,
              preemption_policy="preempt_lower_priority", preempt_after="2m")
PriorityClass(name="batch", value=0, preemptible=True, min_runtime="10m",
              grace_period="30s", max_preemptions=3, on_preempt="requeue",
              global_default=True)
NamedQueue(name="urgent", priority=100, priority_class="high-priority")
ResourceClass(name="large", cpu=4, memory="16Gi")
```

- A class's ``value`` is the priority of its jobs (an explicit ``priority`` at
  submit wins). ``preemption_policy`` says whether its jobs may preempt running
  jobs of lower priority (Kubernetes' default: they may); ``preemptible`` whether
  its own jobs may be preempted, and then only after ``min_runtime``, at most
  ``max_preemptions`` times, with ``grace_period`` between TERM and KILL; a
  preempted job is re-queued (``on_preempt="requeue"``, its retries untouched)
  or cancelled. ``preempt_after``: how long a job waits for room before it
  preempts (time for an autoscaler to add some). The ``global_default`` class
  is given to jobs that name none.
- A named queue maps to a priority and optionally a priority class.
- A resource class is a request bundle: its cpus, memory, GPUs and storage are
  the job's unless the job gives them.

Plain frozen dataclasses that validate when built (``ConfigError`` naming the
value); ``to_spec``/``from_spec`` give the JSON stored as definitions (kinds
``priority_class``, ``queue``, ``resource_class``), read by the pool and by
``xqute submit`` without pydantic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import timedelta
from typing import Any

from ..checks import MAX_ID
from ..errors import ConfigError
from ..units import parse_duration_s, parse_mem_mb
from .requests import check_name

__all__ = [
    "ON_PREEMPT",
    "PREEMPTION_POLICIES",
    "NamedQueue",
    "PriorityClass",
    "ResourceClass",
    "check_name",
    "check_number",
    "from_spec",
    "seconds",
]

PREEMPTION_POLICIES = ("preempt_lower_priority", "never")
ON_PREEMPT = ("requeue", "cancel")


def seconds(value: Any, what: str) -> float:
    """A duration that may be zero: seconds, ``timedelta`` or ``"90s"``/``"5m"``."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if value in (0, 0.0, "0", None):
        return 0.0
    return parse_duration_s(value, what)


def check_number(
    what: str,
    value: Any,
    minimum: float | None = None,
    integer: bool = False,
    above: float | None = None,
) -> None:
    """``ConfigError`` unless ``value`` is a number (an integer) >= ``minimum``
    (and > ``above``)."""
    ok = not isinstance(value, bool) and isinstance(
        value, int if integer else int | float
    )
    # nan and inf are no amount; an integer past SQLite's is none it can store
    finite = ok and (isinstance(value, int) or math.isfinite(value))
    small = finite and -MAX_ID <= value <= MAX_ID
    low = minimum is not None and small and value < minimum
    if not small or low or (above is not None and value <= above):
        kind = "an integer" if integer else "a number"
        kind = kind if finite or not ok else "a finite number"
        bound = "" if minimum is None else f" >= {minimum:g}"
        bound = bound if above is None else f" > {above:g}"
        if finite and not small:
            bound = f"{bound or f' >= {-MAX_ID}'} and <= {MAX_ID}"
        raise ConfigError(f"{what} {value!r} must be {kind}{bound}")


def _int(what: str, value: Any, minimum: int | None = None) -> None:
    check_number(what, value, minimum, integer=True)


def _bool(what: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{what} {value!r} must be true or false")
    return value


def _choice(what: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError.choice(what, value, allowed)
    return value


class _Spec:
    """``to_spec``/``from_spec`` for the dataclasses here (name kept apart)."""

    __slots__ = ()
    name: str

    def to_spec(self) -> dict[str, Any]:
        spec = asdict(self)  # type: ignore[call-overload]
        spec.pop("name")
        return spec

    @classmethod
    def from_spec(cls, name: str, spec: Mapping[str, Any], where: str = "") -> Any:
        return from_spec(cls, name, spec, where)


def from_spec(cls: type, name: str, spec: Mapping[str, Any], where: str = "") -> Any:
    """Build ``cls`` from a dict of its fields (YAML, stored JSON); unknown keys
    are an error naming them, prefixed with ``where``."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where or name}: {spec!r} must be a mapping of fields")
    known = [f.name for f in fields(cls) if f.name != "name"]
    for key in spec:
        if key not in known:
            raise ConfigError.choice(f"{where or name}: key", key, known)
    try:
        return cls(name=name, **spec)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}" if where else str(exc)) from None


@dataclass(frozen=True)
class PriorityClass(_Spec):
    """A priority and the preemption rules of the jobs that name it."""

    name: str
    value: int = 0
    preemption_policy: str = "preempt_lower_priority"
    description: str = ""
    preemptible: bool = False
    min_runtime: float | str | timedelta = 0.0
    grace_period: float | str | timedelta = 30.0
    max_preemptions: int | None = None
    on_preempt: str = "requeue"
    preempt_after: float | str | timedelta = 0.0
    global_default: bool = False

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        check_name("priority class name", self.name)
        _int("value", self.value)
        _choice("preemption_policy", self.preemption_policy, PREEMPTION_POLICIES)
        if not isinstance(self.description, str):
            raise ConfigError(f"description {self.description!r} must be text")
        _bool("preemptible", self.preemptible)
        _bool("global_default", self.global_default)
        for key in ("min_runtime", "grace_period", "preempt_after"):
            set_(self, key, seconds(getattr(self, key), key))
        if self.max_preemptions is not None:
            _int("max_preemptions", self.max_preemptions, 0)
        _choice("on_preempt", self.on_preempt, ON_PREEMPT)

    @property
    def may_preempt(self) -> bool:
        return self.preemption_policy == "preempt_lower_priority"

    @property
    def min_runtime_s(self) -> float:
        return self.min_runtime  # type: ignore[return-value]

    @property
    def grace_period_s(self) -> float:
        return self.grace_period  # type: ignore[return-value]

    @property
    def preempt_after_s(self) -> float:
        return self.preempt_after  # type: ignore[return-value]


@dataclass(frozen=True)
class NamedQueue(_Spec):
    """A named entry point (``scheduler.queues``): a priority and a class."""

    name: str
    priority: int = 0
    priority_class: str | None = None

    def __post_init__(self) -> None:
        check_name("queue name", self.name)
        _int("priority", self.priority)
        if self.priority_class is not None:
            check_name("priority_class", self.priority_class)


@dataclass(frozen=True)
class ResourceClass(_Spec):
    """A named request bundle (``resources.classes``)."""

    name: str
    cpu: int = 1
    memory: int | str | None = None
    gpu: int = 0
    storage: int | str | None = None

    def __post_init__(self) -> None:
        check_name("resource class name", self.name)
        _int("cpu", self.cpu, 1)
        _int("gpu", self.gpu, 0)
        for key in ("memory", "storage"):
            value = getattr(self, key)
            if value not in (None, ""):
                object.__setattr__(self, key, parse_mem_mb(value, key))

    def request(self) -> dict[str, Any]:
        """As ``submit_job`` arguments (cpus, memory, gpus, storage)."""
        return {"cpus": self.cpu, "memory": self.memory, "gpus": self.gpu,
                "storage": self.storage}  # fmt: skip
