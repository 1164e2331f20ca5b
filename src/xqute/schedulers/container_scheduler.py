"""``xqute.schedulers.container_scheduler.ContainerScheduler``: the container
backend with xqute 2.x's scheduler surface (see ``scheduler.py``).

2.x's options: ``image``, ``entrypoint``, ``bin`` (docker or podman: a name or a
path; another name counts as docker, as in 2.x), ``volumes``/``mount``
("HOST:MOUNTED"), ``volume_as_cwd``/``mount_as_cwd``, ``cwd``, ``user``,
``remove``, ``bin_args``. ``post_init`` lays out the mounts (``_mounts.py``):
afterwards ``volumes`` lists them as "HOST:MOUNTED" strings (a client may append
more before the run starts) and ``workdir.mounted`` is where jobs see the
workdir. Jobs then run through the container backend with those volumes.
"""

from __future__ import annotations

import os
from typing import Any

from .. import defaults
from ..errors import ConfigError
from ..path import SpecPath
from ._mounts import one_of, plan_mounts
from .container import ContainerScheduler as _Container
from .container.spec import parse_container_options
from .scheduler import SchedulerV2

__all__ = ["ContainerScheduler"]

_ENGINES = {"docker": "docker", "podman": "podman"}


class ContainerScheduler(SchedulerV2, _Container):
    """Jobs in docker or podman containers."""

    #: where mounts without a given mounted path go inside the container
    DEFAULT_MOUNTED_ROOT = "/mnt/disks"

    def __init__(
        self,
        *args: Any,
        image: str,
        entrypoint: str | list[str] = "/bin/bash",
        bin: str = "docker",
        volumes: str | list[str] | None = None,
        volume_as_cwd: str | None = None,
        mount: str | list[str] | None = None,
        mount_as_cwd: str | None = None,
        remove: bool = True,
        user: str | None = None,
        bin_args: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        as_cwd = one_of("volume_as_cwd/mount_as_cwd", volume_as_cwd, mount_as_cwd)
        one_of("mount_as_cwd/cwd", as_cwd, kwargs.get("cwd"))
        workdir = args[0] if args else kwargs.get("workdir")
        self._kwargs: dict[str, Any] = {
            "volumes": one_of("volumes/mount", volumes, mount),
            "volume_as_cwd": None if as_cwd is None else str(as_cwd),
            "workdir": None if workdir is None else str(workdir),
            "mounted_workdir": kwargs.get("mounted_workdir"),
        }
        self.volumes: list[str] = []
        entry = (
            list(entrypoint) if isinstance(entrypoint, list | tuple) else [entrypoint]
        )
        if len(entry) != 1:
            raise ConfigError(f"entrypoint {entrypoint!r} must be one executable")
        if os.path.basename(str(bin)) in ("apptainer", "singularity"):
            raise ConfigError(
                f"bin {bin!r}: apptainer through xqute 2.x's container scheduler is"
                " not supported; use Xqute(scheduler='container',"
                " scheduler_opts={'bin': 'apptainer', ...})"
            )
        extra = [*(bin_args or []), *(["--user", user] if user else [])]
        if isinstance(image, str) and image.startswith("docker://"):
            image = image[len("docker://") :]
        super().__init__(
            *args,
            image=image,
            entrypoint=entry[0],
            bin=bin,
            engine=_ENGINES.get(os.path.basename(str(bin)), "docker"),
            remove=remove,
            bin_args=extra,
            **kwargs,
        )

    async def post_init(self) -> None:
        """Lay out the mounts; set ``volumes``, ``cwd`` and the workdir's sides."""
        plan = plan_mounts(
            self._kwargs["volumes"],
            workdir=self._kwargs["workdir"],
            workdir_name=defaults.DEFAULT_WORKDIR_NAME,
            root=self.DEFAULT_MOUNTED_ROOT,
            mount_as_cwd=self._kwargs["volume_as_cwd"],
            cwd=self.cwd,
            mounted_workdir=self._kwargs["mounted_workdir"],
        )
        self.cwd = plan.cwd
        self.workdir = SpecPath(plan.workdir, mounted=plan.mounted_workdir)
        self.volumes = [f"{host}:{mounted}" for host, mounted in plan.mounts]

    async def start(self) -> None:
        """Run with ``volumes`` as they are now (the workdir is mounted by the
        backend itself); their missing host folders are made first, as docker
        made them for 2.x (pipen mounts its output folder before it exists)."""
        await self.ensure_post_init()
        for volume in self.volumes:  # 2.x ran docker, which makes them
            os.makedirs(volume.rpartition(":")[0], exist_ok=True)
        mounted = str(self.workdir.mounted)
        self.config["volumes"] = [
            v for v in self.volumes if v.rpartition(":")[2].rstrip("/") != mounted
        ]
        self.spec = parse_container_options(self.config)
        await super().start()
