"""How the store shows a job: the columns it reads, and each row as the dict the
client API returns (``get_job_status``, ``list_jobs``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from .exports import split_env
from .schema import FINAL_STATES, parse_ids

TYPE_CHECKING = False  # typing is not imported at run time (xqute submit)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["BRIEF", "STATUS_KEYS", "STATUS_SQL", "brief_dict", "full_dict"]

STATUS_KEYS = (
    "id", "name", "command", "working_dir", "env", "metadata", "cpus", "mem_mb",
    "gpus", "priority", "timeout_s", "state", "submitted_at", "started_at",
    "ended_at", "return_code", "reason", "worker", "pid", "native_id", "job_dir",
    "gpu_ids", "cpu_ids", "cancel_requested", "attempts", "namespace",
    "priority_class", "preemptions", "storage_mb",
)  # fmt: skip
#: one query: the job and what it used (LEFT JOIN: no usage row before it ran)
STATUS_SQL = (
    f"SELECT {', '.join(f'q.{k}' for k in STATUS_KEYS)}, u.max_rss_mb, u.cpu_s"
    " FROM job_queue q LEFT JOIN resource_usage u ON u.job_id = q.id WHERE q.id = ?"
)
BRIEF = (
    "id, name, state, priority, cpus, mem_mb, gpus, submitted_at, started_at,"
    " ended_at, return_code, worker, gpu_ids, reason, cancel_requested, namespace"
)
_JSON_FIELDS = ("command", "env", "metadata")


def full_dict(row: Sequence[Any]) -> dict[str, Any]:
    """A row of ``STATUS_KEYS`` as ``get_job_status`` returns it."""
    import json  # (a listing needs none: ``xqute submit`` and ``queue`` neither)

    data = dict(zip(STATUS_KEYS, row, strict=True))
    for key in _JSON_FIELDS:
        if data[key] is not None:
            data[key] = json.loads(data[key])
    data["env"], exact = split_env(data["env"])  # exact: the submitter's only
    data["export_env"] = "ALL" if exact else None
    data["final"] = data["state"] in FINAL_STATES
    job_dir = data["job_dir"]
    data["stdout"] = os.path.join(job_dir, "job.stdout") if job_dir else None
    data["stderr"] = os.path.join(job_dir, "job.stderr") if job_dir else None
    return brief_dict(data)


def brief_dict(data: dict[str, Any]) -> dict[str, Any]:
    """A row as a listing returns it: flags as bools, id lists as lists."""
    data["cancel_requested"] = bool(data["cancel_requested"])
    data["gpu_ids"] = list(parse_ids(data["gpu_ids"]))
    if "cpu_ids" in data:
        data["cpu_ids"] = list(parse_ids(data["cpu_ids"]))
    return data
