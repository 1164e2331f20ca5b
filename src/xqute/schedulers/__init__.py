"""Backends, found by name.

Built-in backends are imported only when asked for; other packages add theirs
through the entry-point group ``xqute.schedulers`` (``name = "pkg.module:Class"``).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from .. import _log  # noqa: F401  (engines and pools log: the NullHandler)
from ..errors import ConfigError
from .base import Observation, Scheduler

__all__ = [
    "Observation",
    "Scheduler",
    "available_schedulers",
    "get_scheduler",
    "make_scheduler",
]

ENTRY_POINT_GROUP = "xqute.schedulers"

# name -> "module:Class", relative to this package
_BUILTINS: dict[str, str] = {
    "local": ".local:LocalScheduler",
    "container": ".container:ContainerScheduler",
    "gbatch": ".gbatch:GbatchScheduler",
    "queue": "..queue.backend:QueueScheduler",
    "ssh": ".ssh:SshScheduler",
    "slurm": ".slurm:SlurmScheduler",
    "sge": ".sge:SgeScheduler",
    "htcondor": ".htcondor:HTCondorScheduler",
}


def _entry_points() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_schedulers() -> list[str]:
    """Names that ``get_scheduler`` accepts."""
    return sorted({*_BUILTINS, *_entry_points()})


def get_scheduler(scheduler: str | type[Scheduler]) -> type[Scheduler]:
    """The Scheduler class for a name (or the class itself)."""
    if isinstance(scheduler, type):
        if not issubclass(scheduler, Scheduler):
            raise ConfigError(
                f"scheduler {scheduler!r} is not a subclass of xqute.Scheduler"
            )
        return scheduler
    if not isinstance(scheduler, str):
        raise ConfigError(
            f"scheduler {scheduler!r} must be a name or a Scheduler subclass"
        )
    name = scheduler.lower()
    if name in _BUILTINS:
        module, _, attr = _BUILTINS[name].partition(":")
        return getattr(importlib.import_module(module, __name__), attr)
    eps = _entry_points()
    if name in eps:
        cls = eps[name].load()  # type: ignore[attr-defined]
        return get_scheduler(cls)
    raise ConfigError.choice("scheduler", scheduler, available_schedulers())


def make_scheduler(scheduler: str | type[Scheduler], **opts: Any) -> Scheduler:
    """A backend for a name (or a class) and its options: the class that
    ``for_options`` picks, constructed (constructors do no I/O)."""
    return get_scheduler(scheduler).for_options(opts)(**opts)
