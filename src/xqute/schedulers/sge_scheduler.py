"""``xqute.schedulers.sge_scheduler.SgeScheduler``: the Grid Engine backend with
xqute 2.x's scheduler surface (see ``scheduler.py``). Options are ``#$`` flags
(``q``, ``l`` ...) and the tools' paths (``qsub``, ``qstat``, ``qdel``), as in
2.x."""

from __future__ import annotations

from .scheduler import SchedulerV2
from .sge import SgeScheduler as _Sge

__all__ = ["SgeScheduler"]


class SgeScheduler(SchedulerV2, _Sge):
    """Jobs through qsub."""
