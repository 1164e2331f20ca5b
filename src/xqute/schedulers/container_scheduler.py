"""``xqute.schedulers.container_scheduler.ContainerScheduler``: the container
backend with xqute 2.x's scheduler surface (see ``scheduler.py``)."""

from __future__ import annotations

from .container import ContainerScheduler as _Container
from .scheduler import SchedulerV2

__all__ = ["ContainerScheduler"]


class ContainerScheduler(SchedulerV2, _Container):
    """Jobs in docker or podman containers."""
