"""The Google Cloud Batch backend: one Batch job per xqute job, through gcloud.

The workdir is a ``gs://bucket/path`` URL. The driver writes each job's wrapped
script there (through cloudpathlib), and every Batch job mounts the workdir at
``mounted_workdir`` (``taskSpec.volumes[0]``), so that the script's first
runnable runs ``/bin/bash <mounted_workdir>/<index>/job.wrapped.gbatch`` and the
wrapper's files (rc, stdout, stderr) come back to the bucket, where the driver
reads them. The Batch job config is built by ``_gbatch.build_job_config`` (see
there for how user fields are merged).

Commands: ``gcloud batch jobs submit ID --config FILE --location L --project P``;
ONE ``gcloud batch jobs list --filter ... --format=json`` per poll cycle for all
in-flight jobs of the run (it leaves out the run's succeeded jobs, so its size
follows the jobs in flight plus the failed ones, not the whole run); ``gcloud
batch jobs delete`` to kill. A job that succeeded between two polls is settled
from its rc file; one that is gone without an rc file, from a ``list`` of just
those jobs (accounting).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shlex
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ...errors import BackendError, CommandFailed, ConfigError
from ...job import Job
from ...outcome import Observation
from ...resources import Resources
from ..batch import BatchScheduler
from ..helpers.command import CommandResult
from ..helpers.names import container_name
from .cloudjob import CloudJob
from .config import (
    BATCH_FIELDS,
    GcsMount,
    build_job_config,
    check_mount_path,
    dumps,
    parse_fast_mounts,
    parse_gs_url,
    parse_jobs_list,
)

__all__ = ["GBATCH_OPTIONS", "GbatchScheduler"]

logger = logging.getLogger("xqute")

GBATCH_OPTIONS: dict[str, str] = {
    "project": "the Google Cloud project (required)",
    "location": "the Batch region, e.g. us-central1 (required)",
    "gcloud": "the gcloud executable (default: gcloud on PATH)",
    "mounted_workdir": "where the VM mounts the workdir"
    " (default /mnt/disks/xqute_workdir)",
    "outdir": "a gs:// folder for the jobs' outputs, mounted as volumes[1]",
    "mounted_outdir": "where the VM mounts outdir (default /mnt/disks/xqute_outdir);"
    " jobs see it as $XQUTE_OUTDIR",
    "fast_mount": "extra GCS mounts: 'gs://bucket/path:/mnt/dir' or a list",
    "gs_client": "a cloudpathlib GSClient to read and write job files with"
    " (default: GSClient() with application default credentials)",
    **{
        field: f"Batch job field {field!r}, merged into each job's config"
        for field in BATCH_FIELDS
    },
}


class GbatchScheduler(BatchScheduler):
    """Run each job as a Google Cloud Batch job."""

    name: ClassVar[str] = "gbatch"
    backend_options: ClassVar[dict[str, str]] = GBATCH_OPTIONS
    tools: ClassVar[dict[str, str]] = {"gcloud": "gcloud"}
    own_process_group: ClassVar[bool] = False
    transient_errors: ClassVar[tuple[str, ...]] = (
        r"UNAVAILABLE",
        r"DEADLINE_EXCEEDED",
        r"INTERNAL",
        r"RESOURCE_EXHAUSTED",
        r"connection (reset|refused|aborted)",
        r"timed out",
        r"\b(429|500|502|503|504)\b",
    )
    already_submitted_errors: ClassVar[tuple[str, ...]] = (r"ALREADY_EXISTS",)
    status_takes_ids: ClassVar[bool] = False  # one list of the whole run
    max_ids_per_command: ClassVar[int] = 200
    kill_ids_per_command: ClassVar[int | None] = 1  # delete takes one job
    kill_concurrency: ClassVar[int] = 8
    # a gcloud call costs about a second: poll less often than the default
    default_poll_interval_s: ClassVar[float] = 5.0
    default_poll_interval_max_s: ClassVar[float] = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg = self.config
        client = _check_client(cfg.get("gs_client"))
        if client is not None and isinstance(self.workdir, str):
            self.workdir = client.CloudPath(self.workdir_url)  # no I/O
        for key in ("project", "location"):
            if not isinstance(cfg.get(key), str) or not cfg[key].strip():
                raise ConfigError(
                    f"the gbatch scheduler needs a {key}"
                    f" (scheduler_opts={{'{key}': ...}}); got {cfg.get(key)!r}"
                )
        self.project: str = cfg["project"]
        self.location: str = cfg["location"]
        self.mounted_workdir = check_mount_path(
            cfg.get("mounted_workdir", "/mnt/disks/xqute_workdir"), "mounted_workdir"
        )
        mounts = [GcsMount(self.workdir_remote, self.mounted_workdir)]
        self.mounted_outdir: str | None = None
        if cfg.get("outdir") is not None:
            self.mounted_outdir = check_mount_path(
                cfg.get("mounted_outdir", "/mnt/disks/xqute_outdir"), "mounted_outdir"
            )
            mounts.append(
                GcsMount(parse_gs_url(cfg["outdir"], "outdir"), self.mounted_outdir)
            )
        mounts += parse_fast_mounts(cfg.get("fast_mount") or [])
        self.mounts = mounts
        self.batch_options = {k: cfg[k] for k in BATCH_FIELDS if k in cfg}
        self.run_id = secrets.token_hex(4)
        self._staging: Path | None = None
        # build one config now: bad user fields fail before anything is submitted
        self.job_config(Job(0, ["true"], Path("/")))

    # ------------------------------------------------------------------ paths
    def make_workdir_path(self, workdir: Any) -> Any:
        """The gs:// URL; it becomes a cloud path in the constructor (with the
        ``gs_client`` option) or in start() (the default client: finding
        credentials is I/O)."""
        url = str(workdir)
        self.workdir_remote = parse_gs_url(url, "gbatch workdir")
        self.workdir_url = f"gs://{self.workdir_remote}"
        return self.workdir_url

    def create_job(self, index: int, cmd: Any, envs: Any = None, **kwargs: Any) -> Job:
        return CloudJob(index, cmd, self.workdir, envs, **kwargs)

    def batch_job_id(self, job: Job) -> str:
        """Unique per project and location; lower case, at most 63 characters."""
        return container_name(
            self.jobname_prefix, self.run_id, job.index, job.trial_count
        )

    def job_config(self, job: Job) -> dict[str, Any]:
        env = {"XQUTE_JOB_INDEX": str(job.index)}
        if self.mounted_outdir:
            env["XQUTE_OUTDIR"] = self.mounted_outdir
        timeout_s = self.job_timeout_s(job)
        return build_job_config(
            self.batch_options,
            script_text=f"exec /bin/bash {shlex.quote(self.job_script_path(job))}\n",
            mounts=self.mounts,
            labels={
                "xqute-run": self.run_id,
                "xqute-job": str(job.index),
                "xqute-trial": str(job.trial_count),
            },
            env=env,
            resources=job.resources or Resources(),
            max_run_s=(timeout_s + self.kill_grace_s + 60) if timeout_s else None,
        )

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if isinstance(self.workdir, str):
            self.workdir = await asyncio.to_thread(_default_client_path, self.workdir)
        await super().start()  # (mkdir: nothing to do in a bucket)
        gcloud = self.tool("gcloud")
        if shutil.which(gcloud) is None:
            raise BackendError(f"gcloud {gcloud!r} was not found")
        self._staging = Path(tempfile.mkdtemp(prefix=f"xqute-gbatch-{self.run_id}-"))

    async def aclose(self) -> None:
        await super().aclose()
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)

    def _where(self) -> list[str]:
        return [f"--location={self.location}", f"--project={self.project}"]

    # ------------------------------------------------------------------ submit
    def config_file(self, job: Job) -> Path:
        """Where the job's config is staged for ``--config`` (a local file)."""
        assert self._staging is not None, "start() was not called"
        return self._staging / f"{self.batch_job_id(job)}.json"

    def submit_argv(self, job: Job, script: Any) -> list[str]:
        return [
            self.tool("gcloud"),
            "batch",
            "jobs",
            "submit",
            self.batch_job_id(job),
            f"--config={self.config_file(job)}",
            *self._where(),
            "--format=none",
        ]

    def parse_submit(self, result: CommandResult) -> str:
        return ""  # the ID is ours (batch_job_id)

    def own_native_id(self, job: Job) -> str:
        return self.batch_job_id(job)

    @contextlib.contextmanager
    def stage_submission(self, job: Job) -> Iterator[None]:
        """The job's config, in a local file for ``--config`` while it is
        submitted."""
        config_file = self.config_file(job)
        config_file.write_text(dumps(self.job_config(job)))
        try:
            yield
        finally:
            config_file.unlink(missing_ok=True)

    # ------------------------------------------------------------------ status
    def _list_argv(self, filter_: str) -> list[str]:
        return [
            self.tool("gcloud"),
            "batch",
            "jobs",
            "list",
            *self._where(),
            f"--filter={filter_}",
            "--format=json",
        ]

    def status_argv(self, native_ids: Sequence[str]) -> list[str]:
        """The run's jobs but the succeeded ones (Batch keeps them all): a job
        that succeeded between two polls is settled by its rc file, while a
        failed one stays listed, because how it failed (timeout, preemption)
        is only said here."""
        return self._list_argv(
            f"labels.xqute-run={self.run_id} AND NOT status.state=SUCCEEDED"
        )

    def parse_status(
        self, result: CommandResult, native_ids: Sequence[str]
    ) -> dict[str, Observation]:
        wanted = set(native_ids)
        return {k: v for k, v in parse_jobs_list(result.stdout).items() if k in wanted}

    def accounting_argv(self, native_ids: Sequence[str]) -> list[str]:
        return self._list_argv(
            f"labels.xqute-run={self.run_id} AND name:({' '.join(native_ids)})"
        )

    def parse_accounting(
        self, result: CommandResult, native_ids: Sequence[str]
    ) -> dict[str, Observation]:
        if result.rc != 0:
            return {}
        return self.parse_status(result, native_ids)

    # ------------------------------------------------------------------ kill
    def kill_argv(self, native_ids: Sequence[str]) -> list[str]:
        """``gcloud batch jobs delete`` takes one job: one command per job."""
        (job_id,) = native_ids
        return [
            self.tool("gcloud"),
            "batch",
            "jobs",
            "delete",
            job_id,
            *self._where(),
            "--quiet",
        ]

    def check_kill(self, result: CommandResult, native_ids: Sequence[str]) -> None:
        """A job that is gone already (NOT_FOUND) is no failure."""
        if result.rc != 0 and "NOT_FOUND" not in result.stderr:
            raise CommandFailed(result.argv, result.rc, result.stdout, result.stderr)


def _check_client(client: Any) -> Any:
    if client is None:
        return None
    try:
        client.CloudPath("gs://bucket/probe")  # no I/O: only parses the URL
    except Exception as exc:
        raise ConfigError(
            f"gs_client {client!r} must be a cloudpathlib GS client"
            " (cloudpathlib.GSClient, or cloudpathlib.local.LocalGSClient in tests)"
        ) from exc
    return client


_NEEDS_CLOUDPATHLIB = (
    "the gbatch scheduler reads job files from gs:// with cloudpathlib:"
    " pip install 'xqute[gbatch]'"
)


def _default_client_path(url: str) -> Any:
    """GSClient() finds application default credentials (files, metadata server)."""
    try:
        from cloudpathlib import GSClient
        from cloudpathlib.enums import FileCacheMode
    except ImportError as exc:
        raise ConfigError(_NEEDS_CLOUDPATHLIB) from exc
    try:
        client = GSClient(file_cache_mode=FileCacheMode.close_file)
    except Exception as exc:  # MissingDependenciesError, auth errors
        raise ConfigError(f"{_NEEDS_CLOUDPATHLIB} ({exc})") from exc
    return client.CloudPath(url)
