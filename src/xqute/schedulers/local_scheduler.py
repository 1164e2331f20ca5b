"""``xqute.schedulers.local_scheduler.LocalScheduler``: the local backend with
xqute 2.x's scheduler surface (see ``scheduler.py``)."""

from __future__ import annotations

from .local import LocalScheduler as _Local
from .scheduler import SchedulerV2

__all__ = ["LocalScheduler"]


class LocalScheduler(SchedulerV2, _Local):
    """Jobs as processes on this machine."""
