"""JSON schemas of what the API answers (the OpenAPI document's components).

Written to match the CLI's ``--json`` output, which the API mirrors; the
schemathesis test checks every response against them.
"""

from __future__ import annotations

from typing import Any

from ..queue.schema import STATES

__all__ = [
    "ALERT", "ERROR", "EVENT", "JOB", "JOB_DETAIL", "LOG", "RESOURCES", "RUN",
    "RUN_DETAIL", "SCHEDULE", "WORKER", "nullable",
]  # fmt: skip


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema["type"]
    types = [kind, "null"] if isinstance(kind, str) else [*kind, "null"]
    return {**schema, "type": types}


def obj(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


INT, NUM, STR, BOOL = (
    {"type": "integer"}, {"type": "number"}, {"type": "string"}, {"type": "boolean"}
)  # fmt: skip
OBJ = {"type": "object"}
N_INT, N_NUM, N_STR = nullable(INT), nullable(NUM), nullable(STR)

ERROR = obj(["error"], error=STR)

# fmt: off
JOB = obj(
    ["id", "name", "state", "priority", "cpus", "mem_mb", "gpus", "submitted_at",
     "gpu_ids", "cancel_requested"],
    id=INT, name=STR, state={"type": "string", "enum": list(STATES)}, priority=INT,
    cpus=INT, mem_mb=INT, gpus=INT, submitted_at=NUM, started_at=N_NUM,
    ended_at=N_NUM, return_code=N_INT, worker=N_STR,
    gpu_ids={"type": "array", "items": INT}, reason=N_STR, cancel_requested=BOOL,
)
JOB_DETAIL = obj(
    [*JOB["required"], "command", "attempts", "final", "stdout", "stderr"],
    **JOB["properties"],
    command={"type": ["string", "array"], "items": STR}, working_dir=N_STR,
    env=nullable(OBJ), metadata=nullable(OBJ), timeout_s=N_NUM, pid=N_INT,
    native_id=N_STR, job_dir=N_STR, cpu_ids={"type": "array", "items": INT},
    attempts=INT, final=BOOL, stdout=N_STR, stderr=N_STR, max_rss_mb=N_INT,
    cpu_s=N_NUM,
)
LOG = obj(
    ["id", "stream", "state", "final", "offset", "next_offset", "size", "data"],
    id=INT, stream={"enum": ["stdout", "stderr"]}, state=STR, final=BOOL, offset=INT,
    next_offset=INT, size=INT, data=STR,
)
WORKER = obj(
    ["id", "host", "pid", "backend", "max_workers", "state", "started_at",
     "heartbeat_at", "running_jobs"],
    id=STR, host=STR, pid=INT, backend=STR, max_workers=INT, cpus=N_INT,
    mem_mb=N_INT, gpu_ids=N_STR, state=STR, started_at=NUM, heartbeat_at=NUM,
    running_jobs=INT,
)
ALERT = obj(
    ["rule", "key", "state", "since", "value", "labels", "summary"],
    rule=STR, key=STR, state={"enum": ["pending", "firing", "resolved"]},
    since=NUM, active_at=NUM, value=NUM, labels=OBJ, summary=STR, fired_at=N_NUM,
    resolved_at=N_NUM, notified=OBJ,
)
EVENT = obj(
    ["id", "ts", "type"],
    id=INT, ts=NUM, type=STR, namespace=N_STR, run_id=N_INT, task=N_STR,
    job_id=N_INT, data={},
)
TASK = obj(
    ["name", "state", "attempts", "dependencies"],
    name=STR, state=STR, attempts=INT, rc=N_INT, reason=N_STR, output=N_STR,
    dependencies={"type": "array", "items": STR}, ready_at=N_NUM, started_at=N_NUM,
    ended_at=N_NUM, completions=INT, succeeded_items=INT, failed_items=INT,
    hook=N_STR,
)
RUN = obj(
    ["id", "kind", "name", "namespace", "state", "attempt", "created_at", "tasks",
     "counts"],
    id=INT, kind={"enum": ["workflow", "job"]}, name=STR, namespace=STR, state=STR,
    attempt=INT, params=OBJ, created_at=NUM, started_at=N_NUM, ended_at=N_NUM,
    reason=N_STR, triggered_by=STR, version=N_INT, deadline_at=N_NUM,
    tasks={"type": "array", "items": TASK}, counts=OBJ,
)
RUN_DETAIL = obj(
    [*RUN["required"], "jobs", "suspended"],
    **RUN["properties"],
    jobs={"type": "array", "items": obj(["job_id", "task", "attempt", "state"],
                                        job_id=INT, task=STR, attempt=INT, state=STR)},
    suspended=BOOL,
)
SCHEDULE = obj(
    ["id", "schedule", "kind", "namespace", "name", "describe", "suspended", "fired",
     "missed", "upcoming"],
    id=INT, schedule=STR, kind=STR, namespace=STR, name=STR, spec=OBJ, describe=STR,
    suspended=BOOL, next_fire=N_STR, last_scheduled_for=N_STR, last_fired_at=N_STR,
    last_run_id=N_INT, fired=INT, coalesced=INT, missed=INT, skipped=INT, waiting=INT,
    last_catchup=STR, last_lateness_s=N_NUM,
    upcoming={"type": "array", "items": obj(["time", "note"], time=STR, note=N_STR)},
)
RESOURCES = obj(
    ["capacity", "pools", "namespaces", "priority_classes", "preemptions",
     "autoscalers"],
    capacity=OBJ, pools={"type": "array"}, namespaces=OBJ, priority_classes=OBJ,
    queues=OBJ, resource_classes=OBJ, preemptions={"type": "array"},
    autoscaling=OBJ, autoscalers={"type": "array"},
)
# fmt: on
