"""Workflow and job runs over HTTP: the JSON API and the dashboard's pages.

```
GET  /api/runs?name=&kind=&state=&limit=     xqute workflow list --runs --json
GET  /api/runs/{id}                          xqute workflow status ID --json (+ jobs)
POST /api/runs/{id}/cancel | retry           xqute workflow cancel | retry ID
POST /api/defs/{kind}/{name}/run             xqute workflow|job run NAME
POST /api/defs/{kind}/{name}/suspend|resume  xqute workflow suspend | resume NAME
GET  /runs, /runs/{id}                       the pages (the DAG drawn, live)
```
Reads go through ``orchestration.status`` (the CLI's own reads); actions
through the ``Orchestrator``, so every client does the same thing.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ..checks import row_id
from ..errors import ConfigError
from . import dag
from .params import (
    choice,
    form_body,
    int_param,
    json_body,
    require_action,
    str_param,
)

__all__ = ["RUN_STATES", "api_routes", "page_routes"]

RUN_STATES = ("pending", "running", "succeeded", "failed", "cancelled", "timeout")
KINDS = ("workflow", "job")
TABLE_ROWS = 500  # a run page lists at most this many tasks


def _ctx(request: Request) -> Any:
    ctx = request.app.state.ctx
    if not ctx.features.runs:
        raise HTTPException(404, "workflow runs are not available in this db")
    return ctx


def run_id_param(request: Request) -> int:
    return row_id("run id", request.path_params["run_id"])


def _listing(request: Request, empty_ok: bool = False) -> tuple[list[Any], dict]:
    from ..orchestration.status import list_runs

    ctx = _ctx(request)
    filters = {
        "name": str_param(request, "name", empty_ok=empty_ok),
        "kind": choice("kind", str_param(request, "kind", empty_ok=empty_ok), KINDS),
        "state": choice(
            "state", str_param(request, "state", empty_ok=empty_ok), RUN_STATES
        ),
    }
    limit = int_param(request, "limit", 100, 1, 1000, empty_ok=empty_ok) or 100
    runs = list_runs(ctx.store.db, filters["name"], kind=filters["kind"],
                     state=filters["state"], limit=limit)  # fmt: skip
    return runs, {**filters, "limit": limit}


def detail(ctx: Any, run_id: int) -> dict[str, Any]:
    """The run with its tasks, and the queue jobs of every attempt."""
    from ..orchestration.status import run_status, task_jobs

    data = run_status(ctx.store.db, run_id).as_dict()
    data["jobs"] = task_jobs(ctx.store.db, run_id)
    data["suspended"] = bool(
        ctx.store.db.query(
            "SELECT coalesce(max(suspended), 0) FROM definitions WHERE kind = ?"
            " AND namespace = ? AND name = ? AND deleted_at IS NULL",
            (data["kind"], data["namespace"], data["name"]),
        )[0][0]
    )
    return data


# ---------------------------------------------------------------------- API
def api_list(request: Request) -> Response:
    runs, _ = _listing(request)
    return JSONResponse([r.as_dict() for r in runs])


def api_run(request: Request) -> Response:
    return JSONResponse(detail(_ctx(request), run_id_param(request)))


async def api_run_action(request: Request) -> Response:
    require_action(request)
    ctx = _ctx(request)
    run_id = run_id_param(request)
    action = request.path_params["action"]
    return JSONResponse(await run_in_threadpool(_act_on_run, ctx, run_id, action))


def _act_on_run(ctx: Any, run_id: int, action: str) -> dict[str, Any]:
    orch = ctx.orchestrator()
    if action == "cancel":
        return {"id": run_id, "cancelled": orch.cancel_workflow(run_id)}
    if action == "retry":
        orch.retry_workflow(run_id)
        return {"id": run_id, "attempt": detail(ctx, run_id)["attempt"]}
    raise HTTPException(404, f"no action {action!r} on runs; use cancel or retry")


async def api_def_action(request: Request) -> Response:
    require_action(request)
    ctx = _ctx(request)
    body = await json_body(request)
    return JSONResponse(
        await run_in_threadpool(_act_on_def, ctx, request.path_params, body),
        status_code=201 if request.path_params["action"] == "run" else 200,
    )


def _act_on_def(ctx: Any, path: dict[str, str], body: Any) -> dict[str, Any]:
    kind, name, action = path["kind"], path["name"], path["action"]
    choice("kind", kind, KINDS)
    if action not in ("run", "suspend", "resume"):
        raise HTTPException(404, f"no action {action!r}; use run, suspend or resume")
    if not isinstance(body, dict):
        raise ConfigError("the body must be a JSON object")
    allowed = (
        ["parameters", "namespace", "timeout_s"] if action == "run" else ["namespace"]
    )
    for key in body:
        choice("field", key, allowed)
    namespace = body.get("namespace", "default")
    if not isinstance(namespace, str) or not namespace:
        raise ConfigError(f"namespace {namespace!r} must be a non-empty string")
    orch = ctx.orchestrator()
    if action in ("suspend", "resume"):
        getattr(orch, f"{action}_{kind}")(name, namespace)
        return {"kind": kind, "name": name, "suspended": action == "suspend"}
    params = body.get("parameters") or {}
    if not isinstance(params, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in params.items()
    ):
        raise ConfigError("parameters must be an object of NAME: string value")
    if kind == "job":
        ex = orch.run_job(name, namespace=namespace, parameters=params)
    else:
        ex = orch.execute_workflow(name, params, namespace=namespace,
                                   timeout=body.get("timeout_s"))  # fmt: skip
    return {"run_id": ex.id}


# ---------------------------------------------------------------------- pages
def page_list(request: Request) -> Response:
    from .render import render, unavailable

    if not request.app.state.ctx.features.runs:
        return unavailable(
            request, "runs", "Workflow runs", "this db has no runs table"
        )
    runs, filters = _listing(request, empty_ok=True)
    query = urlencode({k: v for k, v in filters.items() if v not in (None, "")})
    return render(request, "runs.html", "runs", runs=runs, filters=filters,
                  states=RUN_STATES, query=query)  # fmt: skip


def page_run(request: Request) -> Response:
    from .render import render

    ctx = _ctx(request)
    run_id = run_id_param(request)
    data = detail(ctx, run_id)
    tasks = data["tasks"]
    drawing = None
    if len(tasks) <= dag.MAX_DRAWN:
        drawing = dag.layout({t["name"]: t["dependencies"] for t in tasks})
    now = time.time()
    for t in tasks:
        start, end = t["started_at"], t["ended_at"]
        t["duration_s"] = None if start is None else (end or now) - start
    return render(request, "run.html", "runs", run=data, tasks=tasks[:TABLE_ROWS],
                  more_tasks=max(0, len(tasks) - TABLE_ROWS), drawing=drawing,
                  by_name={t["name"]: t for t in tasks}, node_w=dag.NODE_W,
                  node_h=dag.NODE_H)  # fmt: skip


async def page_action(request: Request) -> Response:
    form = await form_body(request)
    require_action(request, form)
    ctx = _ctx(request)
    run_id = run_id_param(request)
    action = request.path_params["action"]
    if action in ("cancel", "retry"):
        await run_in_threadpool(_act_on_run, ctx, run_id, action)
    elif action in ("suspend", "resume"):
        run = await run_in_threadpool(detail, ctx, run_id)
        path = {"kind": run["kind"], "name": run["name"], "action": action}
        await run_in_threadpool(_act_on_def, ctx, path, {"namespace": run["namespace"]})
    else:
        raise HTTPException(404, f"no action {action!r}")
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


def api_routes() -> list[Route]:
    return [
        Route("/api/runs", api_list),
        Route("/api/runs/{run_id}", api_run),
        Route("/api/runs/{run_id}/{action}", api_run_action, methods=["POST"]),
        Route("/api/defs/{kind}/{name}/{action}", api_def_action, methods=["POST"]),
    ]


def page_routes() -> list[Route]:
    return [
        Route("/runs", page_list),
        Route("/runs/{run_id}", page_run),
        Route("/runs/{run_id}/{action}", page_action, methods=["POST"]),
    ]
