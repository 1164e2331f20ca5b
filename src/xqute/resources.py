"""What a job needs: the generic resource request shared by every layer.

Backends map these to their own flags (``--cpus-per-task``, ``-l h_vmem`` ...);
the queue service fits them into its free capacity. An explicit backend option
always wins over the generic value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .errors import ConfigError
from .units import parse_duration_s, parse_mem_mb

__all__ = ["Resources"]

_FIELDS = ("cpus", "mem_mb", "gpus", "time_limit_s")
_ALIASES = {
    "mem": "mem_mb",
    "memory": "mem_mb",
    "time": "time_limit_s",
    "time_limit": "time_limit_s",
    "walltime": "time_limit_s",
}


@dataclass(frozen=True, slots=True)
class Resources:
    """A resource request; ``None`` means "the backend's default"."""

    cpus: int | None = None
    mem_mb: int | None = None
    gpus: int | None = None
    time_limit_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("cpus", "gpus"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ConfigError(f"{name} {value!r} must be a non-negative integer")
        if self.cpus == 0:
            raise ConfigError("cpus 0 is not allowed; a job needs at least 1 cpu")

    @classmethod
    def parse(cls, value: Resources | Mapping[str, Any] | None) -> Resources:
        """Accept a Resources, or a dict with friendly units (``mem="4G"``)."""
        if value is None:
            return EMPTY
        if isinstance(value, Resources):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"resources {value!r} must be a dict or Resources, "
                f"with keys from: {', '.join(_FIELDS)}"
            )
        kwargs: dict[str, Any] = {}
        for key, raw in value.items():
            name = _ALIASES.get(key, key)
            if name not in _FIELDS:
                raise ConfigError.choice("resource", key, [*_FIELDS, *_ALIASES])
            if raw is None:
                continue
            if name == "mem_mb":
                raw = parse_mem_mb(raw, what=key)
            elif name == "time_limit_s":
                raw = parse_duration_s(raw, what=key)
            kwargs[name] = raw
        return cls(**kwargs)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def __bool__(self) -> bool:
        return any(getattr(self, f) is not None for f in _FIELDS)


EMPTY = Resources()
