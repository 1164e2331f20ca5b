"""The JSON API: the same data as the CLI's ``--json`` listings, and the actions.

```
GET  /api/overview                      jobs by state, pools, firing alerts
GET  /api/jobs?state=&name=&namespace=&limit=     xqute queue --json
POST /api/jobs                          submit: {"command": [...], "cpus": 2, ...}
GET  /api/jobs/{id}                     xqute status ID --json
GET  /api/jobs/{id}/log?stream=&offset=&tail=&max_bytes=   a chunk of its log
POST /api/jobs/{id}/cancel              xqute cancel ID
GET  /api/workers?all=                  xqute workers --json
GET  /api/alerts?firing=                xqute alerts --json
GET  /api/events?after=&limit=          the event stream as a list (/stream: SSE)
GET  /api/openapi.json                  this API, described
GET  /metrics                           Prometheus
GET  /healthz                           {"ok": true}
```
Reads run in a worker thread (the store's calls block); the daemon's loop,
which also runs the pool, only parses and answers.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import __version__
from ..monitoring import alert_store
from ..queue.requests import parse_states
from . import queries
from .overview import overview as overview_data
from .params import (
    MAX_ID,
    bool_param,
    choice,
    int_param,
    job_id_param,
    json_body,
    list_param,
    require_action,
    str_param,
)
from .submit import check_submit

__all__ = ["routes"]


def _ctx(request: Request) -> Any:
    return request.app.state.ctx


def healthz(request: Request) -> Response:
    return JSONResponse({"ok": True, "version": __version__})


def get_overview(request: Request) -> Response:
    ctx = _ctx(request)
    return JSONResponse(overview_data(ctx.store, ctx.features, ctx.job_counts.get()))


def list_jobs(request: Request) -> Response:
    ctx = _ctx(request)
    states = list_param(request, "state")
    limit = int_param(request, "limit", 100, 1, 10000)
    name = str_param(request, "name")
    namespace = str_param(request, "namespace")
    parse_states(states or None)  # bad names -> 400 before any query
    jobs = ctx.store.list_jobs(
        state=states or None, name=name, limit=limit, namespace=namespace
    )
    return JSONResponse(jobs)


async def jobs(request: Request) -> Response:
    """One route for both (so that a 405 lists both in ``Allow``)."""
    if request.method == "POST":
        return await submit_job(request)
    return await run_in_threadpool(list_jobs, request)


async def submit_job(request: Request) -> Response:
    require_action(request)
    kwargs = check_submit(await json_body(request))
    job_id = await run_in_threadpool(lambda: _ctx(request).store.submit_job(**kwargs))
    return JSONResponse({"id": job_id}, status_code=201)


def get_job(request: Request) -> Response:
    return JSONResponse(_ctx(request).store.get_job_status(job_id_param(request)))


def get_log(request: Request) -> Response:
    job = _ctx(request).store.get_job_status(job_id_param(request))
    stream = choice("stream", str_param(request, "stream"), ["stdout", "stderr"])
    data = queries.read_log(
        job,
        stream or "stdout",
        offset=int_param(request, "offset", 0, 0, MAX_ID),
        tail=int_param(request, "tail", None, 0, queries.MAX_LOG_CHUNK),
        max_bytes=int_param(request, "max_bytes", 65536, 1, queries.MAX_LOG_CHUNK) or 1,
    )
    return JSONResponse(data)


async def cancel_job(request: Request) -> Response:
    require_action(request)
    job_id = job_id_param(request)
    result = await run_in_threadpool(_ctx(request).store.cancel_job, job_id)
    return JSONResponse({"id": job_id, "result": result})


def list_workers(request: Request) -> Response:
    store = _ctx(request).store
    return JSONResponse(store.list_workers(include_stopped=bool_param(request, "all")))


def list_alerts(request: Request) -> Response:
    ctx = _ctx(request)
    if not ctx.features.alerts:
        return JSONResponse([])
    firing = bool_param(request, "firing")
    return JSONResponse(alert_store.list_alerts(ctx.store.db, firing_only=firing))


def openapi(request: Request) -> Response:
    from .openapi import document

    return JSONResponse(document(_ctx(request)))


def metrics(request: Request) -> Response:
    from .metrics_endpoint import scrape

    body, content_type = scrape(_ctx(request), request.headers.get("accept"))
    return Response(body, media_type=content_type)


def routes() -> list[Route]:
    from . import events, policy_pages, runs

    return [
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        Route("/api/openapi.json", openapi),
        Route("/api/overview", get_overview),
        Route("/api/jobs", jobs, methods=["GET", "POST"]),
        Route("/api/jobs/{job_id}", get_job),
        Route("/api/jobs/{job_id}/log", get_log),
        Route("/api/jobs/{job_id}/cancel", cancel_job, methods=["POST"]),
        Route("/api/workers", list_workers),
        Route("/api/alerts", list_alerts),
        *events.routes(),
        *runs.api_routes(),
        *policy_pages.api_routes(),
    ]
