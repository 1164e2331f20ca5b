"""Autoscaling policies as users write them: ``AutoscalingPolicy`` with its
metrics (``QueueLength``, ``ResourceUtilization``) and rules (``ScalingRule``).

```python
AutoscalingPolicy(
    name="workflow-scaling", target="pool:default",      # or "workflow:NAME"
    metrics=[QueueLength(target=10, tolerance=2),
             ResourceUtilization("cpu", target_percentage=70)],
    min_replicas=1, max_replicas=10,
    scale_up=ScalingRule(threshold=80, duration="5m", step=2),
    scale_down=ScalingRule(threshold=40, duration="10m", step=1))
```

Plain frozen dataclasses that validate when built (``ConfigError`` naming the
value), so the pool reads them without pydantic; ``to_spec``/``from_spec`` give
the JSON stored as a definition of kind ``autoscaling`` and read the YAML block
``resources.auto_scaling``. What the numbers mean: ``autoscale.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import ConfigError
from ..units import parse_duration_s
from .classes import check_number

__all__ = [
    "RESOURCES",
    "AutoscalingPolicy",
    "QueueLength",
    "ResourceUtilization",
    "ScalingRule",
]

RESOURCES = ("cpu", "memory", "gpu")


@dataclass(frozen=True)
class QueueLength:
    """Eligible pending jobs per replica: ``target``, give or take ``tolerance``."""

    target: float
    tolerance: float = 0.0

    def __post_init__(self) -> None:
        check_number("QueueLength target", self.target, above=0)
        check_number("QueueLength tolerance", self.tolerance, 0)


@dataclass(frozen=True)
class ResourceUtilization:
    """Measured use of ``resource`` (cpu, memory, gpu) in percent of capacity;
    ``tolerance`` is relative (0.1: within 10% of the target is on target)."""

    resource: str
    target_percentage: float
    tolerance: float = 0.1

    def __post_init__(self) -> None:
        if self.resource not in RESOURCES:
            raise ConfigError.choice("resource", self.resource, RESOURCES)
        check_number("target_percentage", self.target_percentage, above=0)
        check_number("ResourceUtilization tolerance", self.tolerance, 0)


@dataclass(frozen=True)
class ScalingRule:
    """Scale by at most ``step`` once the condition held for ``duration``
    (``"5m"``, seconds), with the load at/above (up) or at/below (down)
    ``threshold`` percent if given."""

    threshold: float | None = None
    duration: str | float = 0
    step: int = 1

    def __post_init__(self) -> None:
        if self.threshold is not None:
            check_number("threshold", self.threshold, 0)
        check_number("step", self.step, 1, integer=True)
        self.duration_s  # noqa: B018 (validates it)

    @property
    def duration_s(self) -> float:
        if self.duration in (0, "0", None):
            return 0.0
        return parse_duration_s(self.duration, "duration")  # type: ignore[arg-type]


Metric = QueueLength | ResourceUtilization


@dataclass(frozen=True)
class AutoscalingPolicy:
    """Replicas of ``target`` ("pool:NAME", or "workflow:NAME": the pool that
    serves it) between ``min_replicas`` and ``max_replicas``."""

    name: str
    target: str = "pool:default"
    metrics: Sequence[Metric] = (QueueLength(target=1),)
    min_replicas: int = 1
    max_replicas: int = 1
    scale_up: ScalingRule = field(default_factory=ScalingRule)
    scale_down: ScalingRule = field(
        default_factory=lambda: ScalingRule(duration="5m", step=1)
    )

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError(f"autoscaling policy name {self.name!r} must be a name")
        kind, _, what = str(self.target).partition(":")
        if kind not in ("pool", "workflow") or not what:
            raise ConfigError(
                f"autoscaling target {self.target!r} must be 'pool:NAME' or"
                " 'workflow:NAME'"
            )
        check_number("min_replicas", self.min_replicas, 0, integer=True)
        check_number("max_replicas", self.max_replicas, 1, integer=True)
        if self.max_replicas < self.min_replicas:
            raise ConfigError(
                f"max_replicas {self.max_replicas} < min_replicas {self.min_replicas}"
            )
        metrics = tuple(self.metrics)
        if not metrics or not all(
            isinstance(m, QueueLength | ResourceUtilization) for m in metrics
        ):
            raise ConfigError(
                f"metrics {self.metrics!r} must be QueueLength and/or"
                " ResourceUtilization items (at least one)"
            )
        object.__setattr__(self, "metrics", metrics)
        for rule in (self.scale_up, self.scale_down):
            if not isinstance(rule, ScalingRule):
                raise ConfigError(f"{rule!r} must be a ScalingRule")

    # ------------------------------------------------------------------ spec
    def to_spec(self) -> dict[str, Any]:
        """The JSON stored as a definition (name kept apart)."""
        metrics: list[dict[str, Any]] = []
        for m in self.metrics:
            if isinstance(m, QueueLength):
                q = {"target": m.target, "tolerance": m.tolerance}
                metrics.append({"queue_length": q})
            else:
                u = {"resource": m.resource, "tolerance": m.tolerance,
                     "target_percentage": m.target_percentage}  # fmt: skip
                metrics.append({"resource_utilization": u})
        return {
            "target": self.target,
            "metrics": metrics,
            "min_replicas": self.min_replicas,
            "max_replicas": self.max_replicas,
            "scale_up": _rule_spec(self.scale_up),
            "scale_down": _rule_spec(self.scale_down),
        }

    @classmethod
    def from_spec(cls, name: str, spec: Any, where: str = "") -> AutoscalingPolicy:
        """From stored JSON or a YAML policy: ``target`` may also be
        ``{pool: NAME}``/``{workflow: NAME}``; metrics are
        ``{queue_length: {...}}`` or ``{resource_utilization: {...}}``."""
        where = where or f"autoscaling policy {name!r}"
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}: {spec!r} must be a mapping")
        known = ("target", "metrics", "min_replicas", "max_replicas", "scale_up",
                 "scale_down")  # fmt: skip
        for key in spec:
            if key not in known:
                raise ConfigError.choice(f"{where}: key", key, known)
        args = dict(spec)
        try:
            target = args.get("target", "pool:default")
            if isinstance(target, Mapping) and len(target) == 1:
                ((kind, what),) = target.items()
                target = f"{kind}:{what}"
            args["target"] = target
            if "metrics" in args:
                args["metrics"] = [_metric(m) for m in _list(args["metrics"])]
            for key in ("scale_up", "scale_down"):
                if key in args:
                    args[key] = _rule(args[key], key)
            return cls(name=name, **args)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None


def _rule_spec(rule: ScalingRule) -> dict[str, Any]:
    return {"threshold": rule.threshold, "duration": rule.duration_s,
            "step": rule.step}  # fmt: skip


def _list(value: Any) -> list[Any]:
    if isinstance(value, str | Mapping) or not isinstance(value, Sequence):
        raise ConfigError(f"metrics {value!r} must be a list")
    return list(value)


def _rule(value: Any, what: str) -> ScalingRule:
    if isinstance(value, ScalingRule):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(f"{what} {value!r} must be a mapping")
    return _build(ScalingRule, value, what)


def _build(cls: Any, args: Mapping[str, Any], what: str) -> Any:
    names = [f.name for f in fields(cls)]
    for key in args:
        if key not in names:
            raise ConfigError.choice(f"{what}: key", key, names)
    try:
        return cls(**args)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"{what}: {exc}") from None


def _metric(value: Any) -> Metric:
    if isinstance(value, QueueLength | ResourceUtilization):
        return value
    kinds = {"queue_length": QueueLength, "resource_utilization": ResourceUtilization}
    if isinstance(value, Mapping) and len(value) == 1:
        ((kind, args),) = value.items()
        if kind in kinds and isinstance(args, Mapping):
            return _build(kinds[kind], args, kind)
    raise ConfigError(
        f"metric {value!r} must be {{queue_length: {{target: N}}}} or"
        " {resource_utilization: {resource: cpu, target_percentage: N}}"
    )
