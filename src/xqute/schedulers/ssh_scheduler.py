"""``xqute.schedulers.ssh_scheduler.SshScheduler``: the SSH backend with xqute
2.x's scheduler surface (see ``scheduler.py``): ``servers`` and ``ssh`` as in
2.x."""

from __future__ import annotations

from .scheduler import SchedulerV2
from .ssh import SshScheduler as _Ssh

__all__ = ["SshScheduler"]


class SshScheduler(SchedulerV2, _Ssh):
    """Jobs on servers reached over SSH, sharing the filesystem."""
