"""``xqute.schedulers.gbatch_scheduler.GbatchScheduler``: the Google Batch
backend with xqute 2.x's scheduler surface (see ``scheduler.py``)."""

from __future__ import annotations

from .gbatch import GbatchScheduler as _Gbatch
from .scheduler import SchedulerV2

__all__ = ["GbatchScheduler"]


class GbatchScheduler(SchedulerV2, _Gbatch):
    """One Google Batch job per job."""
