"""``xqute.schedulers.gbatch_scheduler.GbatchScheduler``: the Google Batch
backend with xqute 2.x's scheduler surface (see ``scheduler.py``).

2.x's options: ``project``, ``location``, ``mount``/``volumes``
("gs://bucket/path:/mnt/disks/x"), ``mount_as_cwd``/``volume_as_cwd`` (a gs://
folder, the jobs' working directory), ``cwd``, ``image_uri``/``entrypoint``/
``commands`` (the container the job runs in), ``runnables``, ``service_account``,
``network``, ``subnetwork``, ``no_external_ip_address``, ``machine_type``,
``provisioning_model``, and Batch job fields (``taskGroups``, ``labels``,
``allocationPolicy`` ...). As in 2.x, ``config`` holds the Batch job fields
(``config["taskGroups"][0]["taskSpec"]["volumes"]``, ``config["labels"]``) and
``post_init`` lays out the mounts (``_mounts.py``), so a client (pipen) can add
its own volumes and labels.

Running jobs through this surface is not supported yet: 2.x ran the job inside
``runnables[0]``'s container and read the job's files through panpath, where
the gbatch backend (``Xqute(scheduler="gbatch")``) runs the wrapper on the VM
and reads the files through cloudpathlib. ``start()`` says so.
"""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from typing import Any

from .. import defaults
from ..errors import ConfigError, ConfigTypeError
from ..path import SpecPath
from ._mounts import one_of, plan_mounts
from .gbatch import GbatchScheduler as _Gbatch
from .gbatch.config import GcsMount, parse_gs_url
from .scheduler import SchedulerV2

__all__ = ["GbatchScheduler"]


def _batch_fields(
    kwargs: dict[str, Any],
    image_uri: str | None,
    entrypoint: str | None,
    commands: Sequence[str] | None,
    runnables: Sequence[dict[str, Any]] | None,
    allocation: dict[str, Any],
) -> None:
    """2.x's Batch fields, in ``kwargs``: one task group whose first runnable
    is the job's container; ``runnables`` with an ``order`` < 0 run before it."""
    groups = kwargs.setdefault("taskGroups", [{}])
    if not isinstance(groups, list) or not all(
        isinstance(g, dict) for g in groups or [{}]
    ):
        raise ConfigTypeError(f"taskGroups {groups!r} must be a list of dicts")
    groups[:] = groups or [{}]
    spec = groups[0].setdefault("taskSpec", {})
    if not isinstance(spec.setdefault("volumes", []), list):
        raise ConfigTypeError(f"taskSpec.volumes {spec['volumes']!r} must be a list")
    job: dict[str, Any] = {}
    if image_uri:
        job["container"] = {"image_uri": image_uri, "commands": list(commands or [])}
        if entrypoint:
            job["container"]["entrypoint"] = entrypoint
    extra = sorted((dict(r) for r in runnables or ()), key=lambda r: r.get("order", 0))
    before = [r for r in extra if r.pop("order", 0) < 0]
    spec["runnables"] = [*before, job, *extra[len(before) :]]
    labels = kwargs.setdefault("labels", {})
    labels.setdefault("xqute", "true")
    labels.setdefault("user", getpass.getuser())
    kwargs.setdefault("logsPolicy", {"destination": "CLOUD_LOGGING"})
    kwargs.setdefault("allocationPolicy", {}).update(allocation)


class GbatchScheduler(SchedulerV2, _Gbatch):
    """One Google Batch job per job (2.x's configuration surface)."""

    #: where mounts without a given mounted path go on the VM
    DEFAULT_MOUNTED_ROOT = "/mnt/disks"

    def __init__(
        self,
        *args: Any,
        project: str,
        location: str,
        volumes: str | Sequence[str] | None = None,
        mount: str | Sequence[str] | None = None,
        volume_as_cwd: str | None = None,
        mount_as_cwd: str | None = None,
        service_account: str | None = None,
        network: str | None = None,
        subnetwork: str | None = None,
        no_external_ip_address: bool | None = None,
        machine_type: str | None = None,
        provisioning_model: str | None = None,
        image_uri: str | None = None,
        entrypoint: str | None = None,
        commands: str | Sequence[str] | None = None,
        runnables: Sequence[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        as_cwd = one_of("mount_as_cwd/volume_as_cwd", mount_as_cwd, volume_as_cwd)
        one_of("mount_as_cwd/cwd", as_cwd, kwargs.get("cwd"))
        if as_cwd and not str(as_cwd).startswith("gs://"):
            raise ConfigError(f"mount_as_cwd {as_cwd!r} must be a gs:// folder")
        workdir = args[0] if args else kwargs.get("workdir")
        self._kwargs: dict[str, Any] = {
            "mount": one_of("mount/volumes", mount, volumes),
            "mount_as_cwd": as_cwd,
            "workdir": None if workdir is None else str(workdir),
            "mounted_workdir": kwargs.get("mounted_workdir"),
        }
        allocation: dict[str, Any] = {}
        if service_account:
            allocation["serviceAccount"] = {"email": service_account}
        if network or subnetwork or no_external_ip_address is not None:
            nic = {"network": network, "subnetwork": subnetwork}
            nic["noExternalIpAddress"] = no_external_ip_address
            nic = {k: v for k, v in nic.items() if v is not None}
            allocation["network"] = {"networkInterfaces": [nic]}
        if machine_type or provisioning_model:
            policy = {"machineType": machine_type}
            policy["provisioningModel"] = provisioning_model
            policy = {k: v for k, v in policy.items() if v}
            allocation["instances"] = [{"policy": policy}]
        if isinstance(commands, str):
            commands = [commands]
        _batch_fields(kwargs, image_uri, entrypoint, commands, runnables, allocation)
        super().__init__(*args, project=project, location=location, **kwargs)

    def make_workdir_path(self, workdir: Any) -> SpecPath:
        """The workdir as a SpecPath; a relative one is placed by ``post_init``."""
        path = SpecPath(str(workdir), mounted=self._mounted_workdir)
        url = str(path)
        self.workdir_url = url
        self.workdir_remote = url[len("gs://") :] if url.startswith("gs://") else url
        return path

    async def post_init(self) -> None:
        """Lay out the mounts into ``taskSpec.volumes``; set ``cwd`` and the
        workdir's two sides."""
        plan = plan_mounts(
            self._kwargs["mount"],
            workdir=self._kwargs["workdir"],
            workdir_name=defaults.DEFAULT_WORKDIR_NAME,
            root=self.DEFAULT_MOUNTED_ROOT,
            mount_as_cwd=self._kwargs["mount_as_cwd"],
            cwd=self.cwd,
            mounted_workdir=self._kwargs["mounted_workdir"],
        )
        pairs = list(plan.mounts)
        if pairs and pairs[-1] == (plan.workdir, plan.mounted_workdir):
            # 2.x's order: the workdir right after the mount_as_cwd folder
            pairs.insert(int(bool(self._kwargs["mount_as_cwd"])), pairs.pop())
        volumes = self.config["taskGroups"][0]["taskSpec"]["volumes"]
        for host, mounted in pairs:
            volumes.append(GcsMount(parse_gs_url(host, "mount"), mounted).volume())
        self.cwd = plan.cwd
        self.workdir = SpecPath(
            f"gs://{parse_gs_url(plan.workdir, 'gbatch workdir')}",
            mounted=plan.mounted_workdir,
        )
        self.mounts = []  # every volume is in taskSpec.volumes, 2.x's way

    async def start(self) -> None:
        raise ConfigError(
            "running jobs through xqute 2.x's gbatch scheduler is not supported:"
            " use Xqute(scheduler='gbatch') (the gbatch backend) to run them"
        )
