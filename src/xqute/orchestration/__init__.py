"""Orchestration: job and workflow definitions, runs, schedules.

Submodules are imported on first use (PEP 562), so that importing a name
costs only its module.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .schedules import Cron, Every

# public name -> the submodule that defines it (imported on first access)
_LAZY = {
    "Cron": ".schedules",
    "Every": ".schedules",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'xqute.orchestration' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = ["Cron", "Every"]
