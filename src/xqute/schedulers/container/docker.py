"""The container backend: each job runs in its own docker or podman container.

``scheduler_opts={"image": ..., "bin": "docker" | "podman" | "apptainer", ...}``.
The workdir is bind-mounted into the container (at its own absolute path unless
``mounted_workdir`` says otherwise) and the wrapped script runs there through the
entrypoint (``/bin/bash``); rc, stdout and stderr come back through the mounted
job folder, exactly as on the local backend.

Each job gets a container named ``<prefix>-<run>-<index>-<trial>`` and labelled
with the run, so that ONE ``ps --all --filter label=xqute.run=<run>`` per poll
cycle follows every job of the run, one ``stop`` kills many, and a retry gets a
new name. Containers are not started with ``--rm`` (that loses the exit code of a
job killed before its wrapper wrote one): with ``remove`` (the default) they are
removed once their result is read, in batches. Images are never pulled unless
``pull`` says so (``--pull=never``).

With ``bin="apptainer"`` the engine runs an ``ApptainerScheduler`` instead
(``for_options`` says so): apptainer has no daemon, so its jobs are local
processes (see apptainer.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from ...errors import CommandFailed, ConfigError
from ...job import Job
from ...outcome import Observation
from ..base import Scheduler
from ..batch import BatchScheduler
from ..helpers.command import CommandResult, chunks
from .apptainer import ApptainerScheduler
from .commands import engine_run_argv, parse_ps, ps_argv, rm_argv, stop_argv
from .spec import (
    CONTAINER_OPTIONS,
    ContainerSpec,
    check_engine_and_volumes,
    check_host_workdir,
    container_name,
    engine_of,
    parse_container_options,
)

__all__ = ["CONTAINER_OPTIONS", "ContainerScheduler"]

logger = logging.getLogger("xqute")

_NO_SUCH_CONTAINER = re.compile(r"no such container", re.IGNORECASE)
_NO_SUCH_IMAGE = re.compile(r"no such image|image not known", re.IGNORECASE)


class ContainerScheduler(BatchScheduler):
    """Run each job in a docker or podman container."""

    name: ClassVar[str] = "container"
    backend_options: ClassVar[dict[str, str]] = CONTAINER_OPTIONS
    # PID 1 of the container is the wrapper; it signals the command itself
    own_process_group: ClassVar[bool] = False
    transient_errors: ClassVar[tuple[str, ...]] = (
        r"cannot connect to the docker daemon",
        r"connection refused",
        r"i/o timeout",
        r"context deadline exceeded",
        r"database is locked",
        r"resource temporarily unavailable",
    )
    already_submitted_errors: ClassVar[tuple[str, ...]] = (r"already in use",)
    status_takes_ids: ClassVar[bool] = False  # one ps of the whole run
    max_ids_per_command: ClassVar[int] = 500

    @classmethod
    def for_options(cls, opts: Mapping[str, Any]) -> type[Scheduler]:
        """``bin="apptainer"`` runs jobs as local processes: ApptainerScheduler."""
        if cls is ContainerScheduler and _is_apptainer(opts.get("bin")):
            return ApptainerScheduler
        return cls

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec: ContainerSpec = parse_container_options(self.config)
        if self.spec.engine == "apptainer":
            raise ConfigError(
                "ContainerScheduler runs docker or podman; bin='apptainer' is"
                " ApptainerScheduler (Xqute(scheduler='container') picks it)"
            )
        self.mounted_workdir = self.spec.mounted_workdir  # None: at its own path
        self.run_id = secrets.token_hex(4)  # no I/O; unique enough per run
        self._live: set[str] = set()  # created and not yet removed
        self._to_remove: set[str] = set()
        self._remover: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ paths
    def container_name(self, job: Job) -> str:
        return container_name(
            self.jobname_prefix, self.run_id, job.index, job.trial_count
        )

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Check the workdir, the engine, the volumes and the image before any
        job starts."""
        check_host_workdir(str(self.workdir), self.spec.engine)
        await super().start()
        spec = self.spec
        check_engine_and_volumes(spec)
        argv = [spec.bin, "image", "inspect", "--format={{.Id}}", spec.image]
        result = await self.run(argv, check=False)
        if result.rc == 0:
            return
        if not _NO_SUCH_IMAGE.search(result.stderr):
            raise CommandFailed(argv, result.rc, result.stdout, result.stderr)
        if spec.pull == "never":
            raise ConfigError(
                f"image {spec.image!r} is not in {spec.engine}'s local image store"
                " and pull is 'never': build or load it first, or set pull='missing'"
            )

    async def aclose(self) -> None:
        await super().aclose()
        if self._remover is not None:
            with contextlib.suppress(Exception):
                await self._remover
        if self.spec.remove and self._live:
            await self._remove(sorted(self._live))

    # ------------------------------------------------------------------ submit
    def submit_argv(self, job: Job, script: Any) -> list[str]:
        mounted_workdir, metadir = self.script_paths(job)
        return engine_run_argv(
            self.spec,
            name=self.container_name(job),
            run_id=self.run_id,
            index=job.index,
            workdir=str(self.workdir),
            mounted_workdir=mounted_workdir,
            cwd=metadir,
            script=self.job_script_path(job),
            resources=job.resources,
        )

    def parse_submit(self, result: CommandResult) -> str:
        """``run --detach`` prints the container id; the native id is the name."""
        return result.stdout.strip()

    def own_native_id(self, job: Job) -> str:
        return self.container_name(job)

    async def after_failed_submission(self, job: Job, native_id: str) -> None:
        # a failed start (bad entrypoint ...) leaves a created container
        await self.run(rm_argv(self.spec, [native_id]), check=False)

    @contextlib.contextmanager
    def stage_submission(self, job: Job) -> Iterator[None]:
        yield
        self._live.add(self.container_name(job))  # created: removed later

    # ------------------------------------------------------------------ status
    def status_argv(self, native_ids: Sequence[str]) -> list[str]:
        return ps_argv(self.spec, self.run_id)

    def parse_status(
        self, result: CommandResult, native_ids: Sequence[str]
    ) -> dict[str, Observation]:
        wanted = set(native_ids)
        return {k: v for k, v in parse_ps(result.stdout).items() if k in wanted}

    async def after_done(self, job: Job, observation: Observation | None) -> None:
        """A container whose wrapper left no rc file ends with the container's
        exit code (the observation says it) and what the container printed is
        saved in job.stderr; the container is removed (soon, in a batch)."""
        name = job.jid
        if name and observation is not None and job.read_rc_file() is None:
            await self._save_logs(job, name)
        if name and self.spec.remove:
            self._remove_soon(name)

    # ------------------------------------------------------------------ kill
    def kill_argv(self, native_ids: Sequence[str]) -> list[str]:
        return stop_argv(self.spec, native_ids, self.kill_grace_s + 2)

    def kill_timeout_s(self) -> float:
        """``stop`` waits for the containers: up to the grace, plus slack."""
        return self.kill_grace_s + 60

    def check_kill(self, result: CommandResult, native_ids: Sequence[str]) -> None:
        """docker exits 1 for a container that is already gone: no failure."""
        errors = [ln for ln in result.stderr.splitlines() if ln.strip()]
        if result.rc != 0 and not all(_NO_SUCH_CONTAINER.search(e) for e in errors):
            raise CommandFailed(result.argv, result.rc, result.stdout, result.stderr)

    # ------------------------------------------------------------------ cleanup
    async def _save_logs(self, job: Job, name: str) -> None:
        """The wrapper did not finish: keep what the container itself printed
        (a missing entrypoint, bash's own errors) in job.stderr."""
        result = await self.run([self.spec.bin, "logs", name], check=False)
        text = (result.stdout + result.stderr).strip()
        if text:
            job.append_stderr(
                f"xqute: the job's wrapper did not record an rc; output of"
                f" container {name}:\n{text}\n"
            )

    def _remove_soon(self, name: str) -> None:
        self._to_remove.add(name)
        if self._remover is None or self._remover.done():
            self._remover = asyncio.create_task(self._remove_pending())

    async def _remove_pending(self) -> None:
        await asyncio.sleep(0.05)  # gather the jobs that ended in the same cycle
        while self._to_remove:
            names = sorted(self._to_remove)
            self._to_remove.clear()
            await self._remove(names)

    async def _remove(self, names: list[str]) -> None:
        for chunk in chunks(names, self.max_ids_per_command):
            result = await self.run(rm_argv(self.spec, chunk), check=False)
            if result.rc == 0:
                self._live.difference_update(chunk)
            else:
                logger.warning(
                    "container: removing %d container(s) failed: %s",
                    len(chunk),
                    result.stderr.strip(),
                )


def _is_apptainer(bin_: Any) -> bool:
    try:
        return engine_of(bin_) == "apptainer"
    except ConfigError:
        return False  # __init__ reports it
