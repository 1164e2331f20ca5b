"""Google Batch job configs and ``gcloud batch jobs list`` parsing, as pure
functions (unit-tested field by field, and against simulator output).

One Batch job runs one xqute job: one task group with one task whose first
runnable runs the wrapped script from the mounted workdir. The merge rule for the
Batch fields a user gives (``taskGroups``, ``allocationPolicy``, ``labels``,
``logsPolicy``, ``priority``, ``notifications``): user values win, except where
xqute must own the value for the job to work at all:

* ``runnables[0]`` is xqute's script; the user's runnables run after it;
* ``volumes[0]`` is the workdir, ``volumes[1]`` the outdir (when given), then the
  ``fast_mount`` mounts, then the user's volumes (a mountPath used twice is an
  error);
* ``taskCount`` is 1 (one Batch job per xqute job), ``parallelism`` 1;
* labels ``xqute-run``/``xqute-job``/``xqute-trial`` and the environment
  variables ``XQUTE_*`` are xqute's (the status query filters on the run label);
* ``maxRetryCount`` defaults to 0 (xqute retries by its error strategy),
  ``logsPolicy`` to Cloud Logging; ``computeResource`` and ``maxRunDuration``
  come from the job's resources and timeout unless the user set them.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import BackendError, ConfigError
from ...outcome import PENDING, RUNNING, Observation, Seen
from ...resources import Resources
from ...status import JobOutcome

__all__ = [
    "BATCH_FIELDS",
    "GcsMount",
    "build_job_config",
    "parse_fast_mounts",
    "parse_gs_url",
    "parse_jobs_list",
]

# top-level fields of a Batch v1 Job a user may set through scheduler_opts
BATCH_FIELDS = (
    "taskGroups",
    "allocationPolicy",
    "labels",
    "logsPolicy",
    "priority",
    "notifications",
)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_EXIT_CODE = re.compile(r"with exit code (\d+)\.")
_PENDING = ("STATE_UNSPECIFIED", "QUEUED", "SCHEDULED")
# Batch's reserved exit codes (cloud.google.com/batch/docs/troubleshooting)
_RESERVED = {
    50001: (JobOutcome.PREEMPTED, "the VM was preempted"),
    50002: (JobOutcome.NODE_FAILURE, "the VM stopped reporting to Batch"),
    50003: (JobOutcome.NODE_FAILURE, "the VM was rebooted while the task ran"),
    50004: (JobOutcome.NODE_FAILURE, "the VM stopped responding"),
    50005: (JobOutcome.TIMEOUT, "the task ran over its maxRunDuration"),
    50006: (JobOutcome.NODE_FAILURE, "the VM was recreated while the task ran"),
}
MOUNT_OPTIONS = ["--implicit-dirs"]  # the driver writes no directory objects


@dataclass(frozen=True, slots=True)
class GcsMount:
    """One GCS volume: ``remote`` is Batch's remotePath (``bucket/path``)."""

    remote: str
    mount: str

    def volume(self) -> dict[str, Any]:
        return {
            "gcs": {"remotePath": self.remote},
            "mountPath": self.mount,
            "mountOptions": list(MOUNT_OPTIONS),
        }


def parse_gs_url(url: Any, what: str = "workdir") -> str:
    """``gs://bucket[/path]`` -> ``bucket[/path]`` (Batch's remotePath)."""
    if not isinstance(url, str) or not url.startswith("gs://"):
        raise ConfigError(f"{what} {url!r} must be a gs://bucket/path URL")
    rest = url[len("gs://") :].strip("/")
    bucket = rest.split("/", 1)[0]
    if not _BUCKET.match(bucket):
        raise ConfigError(f"{what} {url!r}: {bucket!r} is not a valid bucket name")
    if any(c in rest for c in "\n\x00") or "//" in rest:
        raise ConfigError(f"{what} {url!r} is malformed")
    return rest


def check_mount_path(path: Any, what: str) -> str:
    if not isinstance(path, str) or not path.startswith("/") or path == "/":
        raise ConfigError(f"{what} {path!r} must be an absolute path other than '/'")
    if any(c in path for c in "\n\x00:"):
        raise ConfigError(f"{what} {path!r} must not contain ':' or control characters")
    return path.rstrip("/")


def parse_fast_mounts(value: Any) -> list[GcsMount]:
    """``"gs://bucket/path:/mnt/dir"`` or a list of them."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Sequence):
        raise ConfigError(
            f"fast_mount {value!r} must be 'gs://bucket/path:/mnt/dir' or a list"
        )
    mounts = []
    for item in items:
        if not isinstance(item, str) or ":/" not in item[len("gs://") :]:
            raise ConfigError(
                f"fast_mount {item!r} is malformed; use gs://bucket/path:/mnt/dir"
            )
        url, _, mount = item.rpartition(":")
        mounts.append(
            GcsMount(
                parse_gs_url(url, "fast_mount"), check_mount_path(mount, "fast_mount")
            )
        )
    return mounts


def _dict(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{what} {value!r} must be a dict")
    return copy.deepcopy(dict(value))


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ConfigError(f"{what} {value!r} must be a list")
    return copy.deepcopy(list(value))


def _duration_s(seconds: float) -> str:
    return f"{max(1, round(seconds))}s"


def build_job_config(
    options: Mapping[str, Any],
    *,
    script_text: str,
    mounts: Sequence[GcsMount],
    labels: Mapping[str, str],
    env: Mapping[str, str],
    resources: Resources | None = None,
    max_run_s: float | None = None,
) -> dict[str, Any]:
    """The Batch job config (a dict, for ``--config``) of one xqute job.

    ``options``: the user's Batch fields (see BATCH_FIELDS); ``mounts``: xqute's
    volumes in order (workdir, outdir?, fast mounts); ``labels``/``env``: xqute's.
    """
    config = {k: copy.deepcopy(options[k]) for k in BATCH_FIELDS if k in options}
    groups = _list(config.get("taskGroups"), "taskGroups") or [{}]
    if len(groups) != 1:
        raise ConfigError(
            f"taskGroups has {len(groups)} groups; Batch takes exactly one"
            " (xqute runs one task per job)"
        )
    group = _dict(groups[0], "taskGroups[0]")
    for key in ("taskCount", "parallelism"):
        if str(group.get(key, 1)) != "1":
            raise ConfigError(
                f"taskGroups[0].{key} {group[key]!r} must be 1: each xqute job is"
                " one Batch job with one task (run more jobs instead)"
            )
    group["taskCount"] = 1
    group["parallelism"] = 1
    spec = _dict(group.get("taskSpec"), "taskGroups[0].taskSpec")
    user_runnables = _list(spec.get("runnables"), "taskSpec.runnables")
    spec["runnables"] = [{"script": {"text": script_text}}, *user_runnables]
    volumes = [m.volume() for m in mounts]
    volumes += _list(spec.get("volumes"), "taskSpec.volumes")
    seen: set[str] = set()
    for volume in volumes:
        path = volume.get("mountPath") if isinstance(volume, Mapping) else None
        if path in seen:
            raise ConfigError(f"two volumes are mounted at {path!r}")
        seen.add(path)
    spec["volumes"] = volumes
    environment = _dict(spec.get("environment"), "taskSpec.environment")
    variables = _dict(environment.get("variables"), "environment.variables")
    environment["variables"] = {**variables, **env}
    spec["environment"] = environment
    spec.setdefault("maxRetryCount", 0)
    if max_run_s:
        spec.setdefault("maxRunDuration", _duration_s(max_run_s))
    res = resources or Resources()
    if "computeResource" not in spec and (res.cpus or res.mem_mb):
        compute: dict[str, int] = {}
        if res.cpus:
            compute["cpuMilli"] = res.cpus * 1000
        if res.mem_mb:
            compute["memoryMib"] = res.mem_mb
        spec["computeResource"] = compute
    group["taskSpec"] = spec
    config["taskGroups"] = [group]
    user_labels = _dict(config.get("labels"), "labels")
    config["labels"] = {**user_labels, **labels}
    config.setdefault("logsPolicy", {"destination": "CLOUD_LOGGING"})
    return config


def dumps(config: Mapping[str, Any]) -> str:
    return json.dumps(config, indent=1, sort_keys=False) + "\n"


def _exit_code(job: Mapping[str, Any]) -> int | None:
    """The exit code from the last status event that names one (real Batch
    writes it only into the description text)."""
    events = (job.get("status") or {}).get("statusEvents") or []
    for event in reversed(events):
        found = _EXIT_CODE.findall(str(event.get("description", "")))
        if found:
            return int(found[-1])
    return None


def _observe(job: Mapping[str, Any]) -> Observation:
    state = str((job.get("status") or {}).get("state", "STATE_UNSPECIFIED"))
    if state in _PENDING:
        return PENDING
    if state == "RUNNING":
        return RUNNING
    if state == "SUCCEEDED":
        return Observation(Seen.DONE, JobOutcome.SUCCEEDED, None, 0)
    if state == "FAILED":
        rc = _exit_code(job)
        if rc in _RESERVED:
            outcome, why = _RESERVED[rc]
            return Observation(Seen.DONE, outcome, f"{why} (exit code {rc})", rc)
        why = "the Batch job failed" + (f" with exit code {rc}" if rc else "")
        return Observation(Seen.DONE, JobOutcome.FAILED, why, rc)
    if state == "DELETION_IN_PROGRESS":
        # deleted outside xqute, as far as Batch says (the engine knows its own)
        return Observation(Seen.DONE, JobOutcome.CANCELLED, "the Batch job was deleted")
    if state in ("CANCELLATION_IN_PROGRESS", "CANCELLED"):
        return Observation(
            Seen.DONE, JobOutcome.CANCELLED, "the Batch job was cancelled"
        )
    return RUNNING  # a state this code does not know: keep following


def parse_jobs_list(text: str) -> dict[str, Observation]:
    """``gcloud batch jobs list --format=json`` -> observations by job ID."""
    text = text.strip()
    if not text:
        return {}
    try:
        jobs = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BackendError(f"gcloud printed no JSON list: {text[:200]!r}") from exc
    if not isinstance(jobs, list):
        raise BackendError(f"gcloud printed no JSON list: {text[:200]!r}")
    out = {}
    for job in jobs:
        if isinstance(job, Mapping) and job.get("name"):
            out[str(job["name"]).rsplit("/", 1)[-1]] = _observe(job)
    return out
