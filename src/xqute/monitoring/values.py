"""Checks of values in a config block: each raises ``ConfigError`` naming where
the value is (``monitoring.alerts.rules[2].for``) and what is allowed."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..units import parse_duration_s

__all__ = [
    "boolean",
    "check_mapping",
    "check_name",
    "duration",
    "number",
    "opt_duration",
    "opt_str",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def check_mapping(data: Any, where: str, keys: set[str] | None = None) -> None:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping, not {type(data).__name__}")
    if keys is not None:
        for key in data:
            if key not in keys:
                raise ConfigError.choice(f"{where}: key", key, sorted(keys))


def check_name(name: Any, where: str) -> None:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ConfigError(
            f"{where} {name!r} must be a name of letters, digits, '_', '.' or '-'"
            " (at most 63)"
        )


def number(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise ConfigError(f"{where} {value!r} must be a number")
    return number


def duration(value: Any, where: str) -> float:
    return parse_duration_s(value, where)


def opt_duration(value: Any, where: str, zero: bool = False) -> float | None:
    if value is None:
        return None
    if zero and value in (0, "0", "0s"):
        return 0.0
    return parse_duration_s(value, where)


def opt_str(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} {value!r} must be a non-empty string")
    return value


def boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} {value!r} must be true or false")
    return value
