"""The OpenAPI 3.1 document of the JSON API (``GET /api/openapi.json``).

Written out rather than generated: it is the API's contract, and a test runs
schemathesis against it (every documented input, the responses checked
against these schemas, no 5xx).
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..queue.schema import STATES
from .params import MAX_ID
from .submit import SUBMIT_SCHEMA

__all__ = ["document"]


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema["type"]
    return {
        **schema,
        "type": [kind, "null"] if isinstance(kind, str) else [*kind, "null"],
    }


INT = {"type": "integer"}
TEXT_200 = {
    "type": "string",
    "minLength": 1,
    "maxLength": 200,
    "pattern": "^[^\\x00]*$",
}
TEXT_100 = {**TEXT_200, "maxLength": 100}
NUM = {"type": "number"}
STR = {"type": "string"}
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}
JOB = {
    "type": "object",
    "required": [
        "id",
        "name",
        "state",
        "priority",
        "cpus",
        "mem_mb",
        "gpus",
        "submitted_at",
        "gpu_ids",
        "cancel_requested",
    ],
    "properties": {
        "id": INT,
        "name": STR,
        "state": {"type": "string", "enum": list(STATES)},
        "priority": INT,
        "cpus": INT,
        "mem_mb": INT,
        "gpus": INT,
        "submitted_at": NUM,
        "started_at": _nullable(NUM),
        "ended_at": _nullable(NUM),
        "return_code": _nullable(INT),
        "worker": _nullable(STR),
        "gpu_ids": {"type": "array", "items": INT},
        "reason": _nullable(STR),
        "cancel_requested": {"type": "boolean"},
    },
}
JOB_DETAIL = {
    "type": "object",
    "required": [*JOB["required"], "command", "attempts", "final", "stdout", "stderr"],
    "properties": {
        **JOB["properties"],
        "command": {"type": ["string", "array"], "items": STR},
        "working_dir": _nullable(STR),
        "env": _nullable({"type": "object"}),
        "metadata": _nullable({"type": "object"}),
        "timeout_s": _nullable(NUM),
        "pid": _nullable(INT),
        "native_id": _nullable(STR),
        "job_dir": _nullable(STR),
        "cpu_ids": {"type": "array", "items": INT},
        "attempts": INT,
        "final": {"type": "boolean"},
        "stdout": _nullable(STR),
        "stderr": _nullable(STR),
        "max_rss_mb": _nullable(INT),
        "cpu_s": _nullable(NUM),
    },
}
WORKER = {
    "type": "object",
    "required": [
        "id",
        "host",
        "pid",
        "backend",
        "max_workers",
        "state",
        "started_at",
        "heartbeat_at",
        "running_jobs",
    ],
    "properties": {
        "id": STR,
        "host": STR,
        "pid": INT,
        "backend": STR,
        "max_workers": INT,
        "cpus": _nullable(INT),
        "mem_mb": _nullable(INT),
        "gpu_ids": _nullable(STR),
        "state": STR,
        "started_at": NUM,
        "heartbeat_at": NUM,
        "running_jobs": INT,
    },
}
ALERT = {
    "type": "object",
    "required": ["rule", "key", "state", "since", "value", "labels", "summary"],
    "properties": {
        "rule": STR,
        "key": STR,
        "state": {"type": "string", "enum": ["pending", "firing", "resolved"]},
        "since": NUM,
        "active_at": NUM,
        "value": NUM,
        "labels": {"type": "object"},
        "summary": STR,
        "fired_at": _nullable(NUM),
        "resolved_at": _nullable(NUM),
        "notified": {"type": "object"},
    },
}
EVENT = {
    "type": "object",
    "required": ["id", "ts", "type"],
    "properties": {
        "id": INT,
        "ts": NUM,
        "type": STR,
        "namespace": _nullable(STR),
        "run_id": _nullable(INT),
        "task": _nullable(STR),
        "job_id": _nullable(INT),
        "data": {},
    },
}
LOG = {
    "type": "object",
    "required": [
        "id",
        "stream",
        "state",
        "final",
        "offset",
        "next_offset",
        "size",
        "data",
    ],
    "properties": {
        "id": INT,
        "stream": {"enum": ["stdout", "stderr"]},
        "state": STR,
        "final": {"type": "boolean"},
        "offset": INT,
        "next_offset": INT,
        "size": INT,
        "data": STR,
    },
}


def _q(name: str, schema: dict[str, Any], doc: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": doc,
    }


JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
}


def _ok(schema: dict[str, Any], doc: str = "OK", code: str = "200") -> dict[str, Any]:
    errors = {
        c: {"description": d, "content": {"application/json": {"schema": ERROR}}}
        for c, d in (("400", "bad input"), ("404", "not found"))
    }
    return {
        code: {"description": doc, "content": {"application/json": {"schema": schema}}},
        **errors,
    }


def _action(schema: dict[str, Any], code: str = "200") -> dict[str, Any]:
    out = _ok(schema, code=code)
    for c, d in (("401", "no token"), ("403", "bad CSRF token or origin")):
        out[c] = {"description": d, "content": {"application/json": {"schema": ERROR}}}
    return out


def document(ctx: Any = None) -> dict[str, Any]:
    array = lambda item: {"type": "array", "items": item}  # noqa: E731
    one_state = "|".join([*STATES, "all"])
    state_list = {"type": "string", "pattern": f"^({one_state})(,({one_state}))*$"}
    paths: dict[str, Any] = {
        "/healthz": {
            "get": {"summary": "Liveness", "responses": _ok({"type": "object"})}
        },
        "/api/overview": {
            "get": {
                "summary": "Jobs by state, live pools, firing alerts",
                "responses": _ok({"type": "object", "required": ["jobs", "workers"]}),
            }
        },
        "/api/jobs": {
            "get": {
                "summary": "Jobs, like `xqute queue --json`",
                "parameters": [
                    _q(
                        "state",
                        state_list,
                        "a state (repeatable, or a,b); all: every state",
                    ),
                    _q(
                        "name",
                        TEXT_200,
                        "a name glob",
                    ),
                    _q(
                        "namespace",
                        TEXT_200,
                        "a namespace",
                    ),
                    _q(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 10000},
                        "rows",
                    ),
                ],
                "responses": _ok(array(JOB)),
            },
            "post": {
                "summary": "Submit a job (token)",
                "security": [{"bearer": []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": SUBMIT_SCHEMA}},
                },
                "responses": _action(
                    {"type": "object", "required": ["id"], "properties": {"id": INT}},
                    "201",
                ),
            },
        },
        "/api/jobs/{job_id}": {
            "get": {
                "summary": "Everything about a job, like `xqute status ID --json`",
                "parameters": [JOB_ID],
                "responses": _ok(JOB_DETAIL),
            }
        },
        "/api/jobs/{job_id}/log": {
            "get": {
                "summary": "A chunk of a job's stdout or stderr",
                "parameters": [
                    JOB_ID,
                    _q(
                        "stream",
                        {"type": "string", "enum": ["stdout", "stderr"]},
                        "which",
                    ),
                    _q(
                        "offset",
                        {"type": "integer", "minimum": 0, "maximum": MAX_ID},
                        "from",
                    ),
                    _q(
                        "tail",
                        {"type": "integer", "minimum": 0, "maximum": 1 << 20},
                        "the last N bytes instead",
                    ),
                    _q(
                        "max_bytes",
                        {"type": "integer", "minimum": 1, "maximum": 1 << 20},
                        "at most",
                    ),
                ],
                "responses": _ok(LOG),
            }
        },
        "/api/jobs/{job_id}/cancel": {
            "post": {
                "summary": "Cancel a job (token)",
                "security": [{"bearer": []}],
                "parameters": [JOB_ID],
                "responses": _action(
                    {
                        "type": "object",
                        "required": ["id", "result"],
                        "properties": {"id": INT, "result": STR},
                    }
                ),
            }
        },
        "/api/workers": {
            "get": {
                "summary": "Pools serving the db, like `xqute workers --json`",
                "parameters": [
                    _q("all", {"type": "boolean"}, "stopped and dead ones too")
                ],
                "responses": _ok(array(WORKER)),
            }
        },
        "/api/alerts": {
            "get": {
                "summary": "Alerts, like `xqute alerts --json`",
                "parameters": [_q("firing", {"type": "boolean"}, "only firing ones")],
                "responses": _ok(array(ALERT)),
            }
        },
        "/api/events": {
            "get": {
                "summary": "Events after a cursor (404: this db has no event stream)",
                "parameters": [
                    _q(
                        "after",
                        {"type": "integer", "minimum": 0, "maximum": MAX_ID},
                        "cursor",
                    ),
                    _q(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 1000},
                        "rows",
                    ),
                    _q(
                        "run",
                        {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                        "a run",
                    ),
                    _q(
                        "job",
                        {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                        "a job",
                    ),
                    _q(
                        "type",
                        TEXT_100,
                        "a type glob, task.*",
                    ),
                ],
                "responses": _ok(array(EVENT)),
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "xqute",
            "version": __version__,
            "description": "The queue daemon's HTTP API. Reads need no token on"
            " loopback; actions need 'Authorization: Bearer <token>' (xqute service"
            " status shows it). /api/events/stream serves the events as"
            " Server-Sent Events (Last-Event-ID resumes); /metrics is Prometheus.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        },
    }
