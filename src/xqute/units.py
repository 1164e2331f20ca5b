"""Parsing of durations and memory sizes given by users (CLI, options, YAML).

Pure functions; every bad value raises ``ConfigError`` naming the value and the
accepted forms.
"""

from __future__ import annotations

import math
import re

from .checks import as_float
from .errors import ConfigError

__all__ = [
    "format_duration_s",
    "format_mem_mb",
    "parse_duration_s",
    "parse_mem_mb",
    "parse_size_bytes",
    "parse_timeout_s",
]

_DURATION_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_CLOCK_RE = re.compile(r"^(?:(\d+)-)?(\d+):(\d{1,2})(?::(\d{1,2}))?$")

_MEM_UNITS_MB = {"": 1, "k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}
_MEM_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b|i)?\s*$", re.IGNORECASE)

DURATION_FORMS = "seconds (90), or with a unit (90s, 15m, 1h, 2d), or [D-]HH:MM[:SS]"
MEM_FORMS = "megabytes (512) or with a unit (512M, 4G, 4Gi, 1T)"
SIZE_FORMS = "bytes (65536) or with a unit (64Ki, 64K, 4Mi)"


def parse_duration_s(value: str | float | int, what: str = "duration") -> float:
    """Seconds in ``value``: ``90``, ``"90s"``, ``"15m"``, ``"1h"``, ``"01:30:00"``."""
    if isinstance(value, bool):
        raise ConfigError(f"{what} {value!r} is not a duration; use {DURATION_FORMS}")
    if isinstance(value, int | float):
        seconds = as_float(value)
    else:
        text = str(value).strip()
        match = _DURATION_RE.match(text)
        clock = _CLOCK_RE.match(text)
        if match:
            seconds = float(match[1]) * _DURATION_UNITS_S[(match[2] or "s").lower()]
        elif clock:
            days, hours, minutes, secs = (int(g) if g else 0 for g in clock.groups())
            if clock[4] is None:  # H:MM means hours and minutes
                secs = 0
            seconds = as_float(days * 86400 + hours * 3600 + minutes * 60 + secs)
        else:
            raise ConfigError(
                f"{what} {value!r} is not a duration; use {DURATION_FORMS}"
            )
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"{what} {value!r} must be a positive duration")
    return seconds


def parse_timeout_s(value: object, what: str = "timeout") -> float | None:
    """``parse_duration_s`` of a value that may also be None (no limit) or a
    ``timedelta`` (anything with ``total_seconds()``)."""
    if value is None:
        return None
    total = getattr(value, "total_seconds", None)
    return parse_duration_s(total() if callable(total) else value, what)  # type: ignore[arg-type]


def parse_mem_mb(value: str | float | int, what: str = "memory") -> int:
    """Megabytes in ``value``: ``512`` (MB), ``"512M"``, ``"4G"``, ``"4Gi"``,
    ``"1.5GB"`` (units are binary either way: 1G = 1Gi = 1024M)."""
    if isinstance(value, bool):
        raise ConfigError(f"{what} {value!r} is not a memory size; use {MEM_FORMS}")
    if isinstance(value, int | float):
        mb = as_float(value)
    else:
        match = _MEM_RE.match(str(value))
        if not match:
            raise ConfigError(f"{what} {value!r} is not a memory size; use {MEM_FORMS}")
        mb = float(match[1]) * _MEM_UNITS_MB[match[2].lower()]
    if not math.isfinite(mb) or mb < 0:
        raise ConfigError(
            f"{what} {value!r} must be a finite memory size >= 0; use {MEM_FORMS}"
        )
    return math.ceil(mb)


def parse_size_bytes(value: str | int, what: str = "size") -> int:
    """Bytes in ``value``: ``65536``, ``"64Ki"``, ``"64K"``, ``"4Mi"`` (binary)."""
    if isinstance(value, bool):
        raise ConfigError(f"{what} {value!r} is not a size; use {SIZE_FORMS}")
    if isinstance(value, int):
        size = float(value)
    else:
        match = _MEM_RE.match(str(value))
        if not match:
            raise ConfigError(f"{what} {value!r} is not a size; use {SIZE_FORMS}")
        size = float(match[1]) * _MEM_UNITS_MB[match[2].lower()] * 1024 * 1024
        if not match[2]:
            size = float(match[1])  # a bare number counts bytes here
    if not math.isfinite(size) or size < 1:
        raise ConfigError(f"{what} {value!r} must be at least one byte")
    return math.ceil(size)


def format_duration_s(seconds: float) -> str:
    """``5400`` -> ``"1:30:00"``: the way batch schedulers want a time limit."""
    total = math.ceil(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def format_mem_mb(mb: int) -> str:
    """``4096`` -> ``"4G"``, ``1500`` -> ``"1500M"``."""
    if mb and mb % 1024 == 0:
        return f"{mb // 1024}G"
    return f"{mb}M"
