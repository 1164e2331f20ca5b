"""The OpenAPI 3.1 document of the JSON API (``GET /api/openapi.json``).

Written out rather than generated: it is the API's contract, and a test runs
schemathesis against it (every documented input, valid or not, gets a
documented answer; every response matches its schema; never a 5xx). The
response schemas are in ``schemas.py``.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..queue.schema import STATES
from . import schemas as s
from .params import MAX_ID
from .runs import KINDS, RUN_STATES
from .submit import SUBMIT_SCHEMA

__all__ = ["document"]

TEXT_200 = {
    "type": "string",
    "minLength": 1,
    "maxLength": 200,
    "pattern": "^[^\\x00]*$",
}
TEXT_100 = {**TEXT_200, "maxLength": 100}
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
CURSOR = {"type": "integer", "minimum": 0, "maximum": MAX_ID}
_ONE_STATE = "|".join([*STATES, "all"])
STATE_LIST = {"type": "string", "pattern": f"^({_ONE_STATE})(,({_ONE_STATE}))*$"}
NAME = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$", "maxLength": 200}


def _q(name: str, schema: dict[str, Any], doc: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": doc}  # fmt: skip


def _path(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _json(schema: dict[str, Any], doc: str) -> dict[str, Any]:
    return {"description": doc, "content": {"application/json": {"schema": schema}}}


_ERRORS = {"400": "bad input", "404": "not found"}


def _get(summary: str, schema: dict[str, Any], *params: Any) -> dict[str, Any]:
    responses = {"200": _json(schema, "OK")}
    responses.update({c: _json(s.ERROR, d) for c, d in _ERRORS.items()})
    return {"get": {"summary": summary, "parameters": list(params),
                    "responses": responses}}  # fmt: skip


def _post(
    summary: str, schema: dict[str, Any], *params: Any, body: Any = None, code="200"
) -> dict[str, Any]:
    """An action: it needs the token (401 without, 403 with a bad CSRF token or
    Origin); 409 when the state forbids it (a running run cannot be retried)."""
    responses = {code: _json(schema, "done")}
    errors = {**_ERRORS, "401": "no token", "403": "bad CSRF token or origin",
              "409": "not now (the state forbids it)"}  # fmt: skip
    responses.update({c: _json(s.ERROR, d) for c, d in errors.items()})
    op: dict[str, Any] = {
        "summary": summary,
        "security": [{"bearer": []}],
        "parameters": list(params),
        "responses": responses,
    }
    if body is not None:
        content = {"application/json": {"schema": body}}
        op["requestBody"] = {"required": False, "content": content}
    return {"post": op}


def _array(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


# fmt: off
def _paths() -> dict[str, Any]:
    job_id, run_id = _path("job_id", ID), _path("run_id", ID)
    ref = _path("ref", {**NAME, "pattern": "^((job|workflow)/)?" + NAME["pattern"][1:]})
    namespace = _q("namespace", TEXT_200, "its namespace (default: default)")
    jobs = _get(
        "Jobs, like `xqute queue --json`", _array(s.JOB),
        _q("state", STATE_LIST, "states (repeatable, or a,b); all: every state"),
        _q("name", TEXT_200, "a name glob"), _q("namespace", TEXT_200, "a namespace"),
        _q("limit", {"type": "integer", "minimum": 1, "maximum": 10000}, "rows"),
    )
    jobs.update(_post("Submit a job (token)", s.obj(["id"], id=s.INT),
                      body=SUBMIT_SCHEMA, code="201"))
    jobs["post"]["requestBody"]["required"] = True
    return {
        "/healthz": _get("Liveness", s.OBJ),
        "/api/overview": _get(
            "Jobs by state, pools, quotas, active runs, next fires, firing alerts",
            s.obj(["jobs", "workers", "quotas", "runs_active", "next_fires"]),
        ),
        "/api/jobs": jobs,
        "/api/jobs/{job_id}": _get("A job, like `xqute status ID --json`",
                                   s.JOB_DETAIL, job_id),
        "/api/jobs/{job_id}/log": _get(
            "A chunk of a job's stdout or stderr", s.LOG, job_id,
            _q("stream", {"type": "string", "enum": ["stdout", "stderr"]}, "which"),
            _q("offset", CURSOR, "from"),
            _q("tail", {"type": "integer", "minimum": 0, "maximum": 1 << 20},
               "the last N bytes instead"),
            _q("max_bytes", {"type": "integer", "minimum": 1, "maximum": 1 << 20},
               "at most"),
        ),
        "/api/jobs/{job_id}/cancel": _post(
            "Cancel a job (token)", s.obj(["id", "result"], id=s.INT, result=s.STR),
            job_id),
        "/api/workers": _get("Pools, like `xqute workers --json`", _array(s.WORKER),
                             _q("all", {"type": "boolean"}, "stopped ones too")),
        "/api/alerts": _get("Alerts, like `xqute alerts --json`", _array(s.ALERT),
                            _q("firing", {"type": "boolean"}, "only firing ones")),
        "/api/events": _get(
            "Events after a cursor; /api/events/stream serves them as SSE",
            _array(s.EVENT),
            _q("after", CURSOR, "cursor"),
            _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "rows"),
            _q("run", ID, "a run"), _q("job", ID, "a job"),
            _q("type", TEXT_100, "a type glob, task.*"),
            _q("namespace", TEXT_100, "a namespace"),
        ),
        "/api/runs": _get(
            "Runs, newest first, like `xqute workflow list --runs --json`",
            _array(s.RUN),
            _q("name", TEXT_200, "a workflow or job name"),
            _q("kind", {"type": "string", "enum": list(KINDS)}, "workflow or job"),
            _q("state", {"type": "string", "enum": list(RUN_STATES)}, "a state"),
            _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "rows"),
        ),
        "/api/runs/{run_id}": _get("A run with its tasks and queue jobs, like"
                                   " `xqute workflow status ID --json`",
                                   s.RUN_DETAIL, run_id),
        "/api/runs/{run_id}/cancel": _post(
            "Cancel a run (token)", s.obj(["id", "cancelled"], id=s.INT,
                                          cancelled=s.BOOL), run_id),
        "/api/runs/{run_id}/retry": _post(
            "Retry what did not succeed (token)",
            s.obj(["id", "attempt"], id=s.INT, attempt=s.INT), run_id),
        "/api/defs/{kind}/{name}/run": _post(
            "Start a run of a workflow or job (token)", s.obj(["run_id"], run_id=s.INT),
            _path("kind", {"type": "string", "enum": list(KINDS)}), _path("name", NAME),
            body={"type": "object", "additionalProperties": False, "properties": {
                "parameters": {"type": "object", "additionalProperties": s.STR},
                "namespace": TEXT_200,
                "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 1e9},
            }},
            code="201",
        ),
        **{
            f"/api/defs/{{kind}}/{{name}}/{action}": _post(
                f"{action.capitalize()} a workflow or job (token)",
                s.obj(["kind", "name", "suspended"], kind=s.STR, name=s.STR,
                      suspended=s.BOOL),
                _path("kind", {"type": "string", "enum": list(KINDS)}),
                _path("name", NAME),
                body={"type": "object", "additionalProperties": False,
                      "properties": {"namespace": TEXT_200}},
            )
            for action in ("suspend", "resume")
        },
        "/api/schedules": _get("Schedules with their next fires (DST notes), like"
                               " `xqute schedule list --json`", _array(s.SCHEDULE)),
        "/api/schedules/{ref}/next": _get(
            "The next fire times, like `xqute schedule next REF --json`",
            _array(s.obj(["time", "note"], time=s.STR, note=s.N_STR)), ref,
            _q("n", {"type": "integer", "minimum": 1, "maximum": 1000}, "how many"),
            namespace,
        ),
        "/api/schedules/{ref}/fire": _post(
            "One run now (token)", s.obj(["schedule", "run_id"], schedule=s.STR,
                                         run_id=s.INT), ref, namespace),
        **{
            f"/api/schedules/{{ref}}/{action}": _post(
                f"{action.capitalize()} a schedule (token)",
                s.obj(["schedule", "suspended", "changed"], schedule=s.STR,
                      suspended=s.BOOL, changed=s.BOOL),
                ref, namespace,
            )
            for action in ("suspend", "resume")
        },
        "/api/resources": _get("Capacity, quotas, priority classes, preemptions,"
                               " autoscalers, like `xqute resources show --json`",
                               s.RESOURCES, _q("namespace", TEXT_200, "only this one")),
    }
# fmt: on


def document(ctx: Any = None) -> dict[str, Any]:
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
        "paths": _paths(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        },
    }
