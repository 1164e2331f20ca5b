"""``xqute.schedulers.ssh_scheduler.SshScheduler``: the SSH backend with xqute
2.x's scheduler surface (see ``scheduler.py``).

2.x's ``servers`` is a list of hosts or ``{host: {port, user, keyfile,
ctrl_persist, ctrl_dir}}`` (the key is the host); they become this backend's
``{name: {host, ...}}``. ``ssh`` is the client, as in 2.x.
"""

from __future__ import annotations

from typing import Any

from .scheduler import SchedulerV2
from .ssh import SshScheduler as _Ssh

__all__ = ["SshScheduler"]


def servers_from_2x(servers: Any) -> Any:
    """2.x's forms of ``servers`` in this backend's form (others as they are)."""
    if isinstance(servers, list | tuple):
        return {str(host): {"host": str(host)} for host in servers}
    if isinstance(servers, dict):
        return {
            name: {"host": name, **conf} if isinstance(conf, dict) else conf
            for name, conf in servers.items()
        }
    return servers


class SshScheduler(SchedulerV2, _Ssh):
    """Jobs on servers reached over SSH, sharing the filesystem."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "servers" in kwargs:
            kwargs["servers"] = servers_from_2x(kwargs["servers"])
        super().__init__(*args, **kwargs)
