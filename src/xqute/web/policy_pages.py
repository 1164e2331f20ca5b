"""Schedules and resources over HTTP: the JSON API and the dashboard's pages.

```
GET  /api/schedules                          xqute schedule list --json (+ next fires)
GET  /api/schedules/{ref}/next?n=            xqute schedule next REF --json
POST /api/schedules/{ref}/fire|suspend|resume   xqute schedule fire|suspend|resume REF
GET  /api/resources?namespace=               xqute resources show --json
GET  /schedules, /resources                  the pages
```
``ref`` is a job's or workflow's name (``job/NAME``, ``workflow/NAME`` when
both exist); a ``namespace`` query parameter picks another namespace. Reads
and actions go through the orchestration layer's own functions, the ones the
CLI calls.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .params import form_body, int_param, require_action, str_param

__all__ = ["api_routes", "page_routes"]

UPCOMING = 5  # fire times shown per schedule


def _ctx(request: Request, what: str) -> Any:
    ctx = request.app.state.ctx
    if not getattr(ctx.features, what):
        raise HTTPException(404, f"{what} are not available in this db")
    return ctx


def schedule_views(db: Any) -> list[dict[str, Any]]:
    """``xqute schedule list --json``, each with its next fire times (and DST
    notes) and the lateness of its last fire."""
    from ..orchestration import schedule_store as store
    from ..orchestration.schedule_view import row_view, upcoming

    now = datetime.now(UTC)
    out = []
    for row in store.list_rows(db):
        view = row_view(row, now)
        after = max(now, store.to_dt(row.settled_until))
        view["upcoming"] = (
            []
            if row.suspended
            else [
                {"time": t.isoformat(), "note": note}
                for t, note in upcoming(row.schedule, UPCOMING, after)
            ]
        )
        late = db.query(
            "SELECT lateness_s FROM schedule_fires WHERE schedule_id = ?"
            " AND lateness_s IS NOT NULL ORDER BY scheduled_for DESC LIMIT 1",
            (row.id,),
        )
        view["last_lateness_s"] = late[0][0] if late else None
        out.append(view)
    return out


def _ref(request: Request) -> tuple[str, str]:
    ref = request.path_params["ref"]
    namespace = str_param(request, "namespace") or "default"
    return ref, namespace


# ---------------------------------------------------------------------- API
def api_schedules(request: Request) -> Response:
    return JSONResponse(schedule_views(_ctx(request, "schedules").store.db))


def api_next(request: Request) -> Response:
    from ..orchestration import schedule_store as store
    from ..orchestration.schedule_view import upcoming

    ctx = _ctx(request, "schedules")
    ref, namespace = _ref(request)
    n = int_param(request, "n", 10, 1, 1000) or 10
    row = store.find(ctx.store.db, ref, namespace)
    after = max(datetime.now(UTC), store.to_dt(row.settled_until))
    times = upcoming(row.schedule, n, after)
    return JSONResponse([{"time": t.isoformat(), "note": note} for t, note in times])


async def api_schedule_action(request: Request) -> Response:
    require_action(request)
    ctx = _ctx(request, "schedules")
    ref, namespace = _ref(request)
    action = request.path_params["action"]
    return JSONResponse(await run_in_threadpool(_act, ctx, ref, namespace, action))


def _act(ctx: Any, ref: str, namespace: str, action: str) -> dict[str, Any]:
    from ..orchestration.schedule_ops import fire_now, set_suspended

    db = ctx.store.db
    if action == "fire":
        run_id = fire_now(db, ref, namespace)
        ctx.store.notify_pools()
        return {"schedule": ref, "run_id": run_id}
    if action in ("suspend", "resume"):
        changed = set_suspended(db, ref, action == "suspend", namespace)
        return {"schedule": ref, "suspended": action == "suspend", "changed": changed}
    raise HTTPException(404, f"no action {action!r}; use fire, suspend or resume")


def api_resources(request: Request) -> Response:
    from ..orchestration.resource_report import resource_usage

    ctx = _ctx(request, "quotas")
    return JSONResponse(resource_usage(ctx.store.db, str_param(request, "namespace")))


# ---------------------------------------------------------------------- pages
def page_schedules(request: Request) -> Response:
    from .render import render, unavailable

    ctx = request.app.state.ctx
    if not ctx.features.schedules:
        why = "this db has no schedules table"
        return unavailable(request, "schedules", "Schedules", why)
    return render(request, "schedules.html", "schedules",
                  schedules=schedule_views(ctx.store.db))  # fmt: skip


async def page_schedule_action(request: Request) -> Response:
    form = await form_body(request)
    require_action(request, form)
    ctx = _ctx(request, "schedules")
    ref, namespace = _ref(request)
    await run_in_threadpool(_act, ctx, ref, namespace, request.path_params["action"])
    return RedirectResponse("/schedules", status_code=303)


def page_resources(request: Request) -> Response:
    from ..orchestration.resource_report import resource_usage
    from .render import render

    ctx = request.app.state.ctx
    report = resource_usage(ctx.store.db) if ctx.features.quotas else None
    workers = ctx.store.list_workers(include_stopped=False)
    return render(request, "resources.html", "resources", report=report,
                  workers=workers)  # fmt: skip


def api_routes() -> list[Route]:
    return [
        Route("/api/schedules", api_schedules),
        Route("/api/schedules/{ref:path}/next", api_next),
        Route(
            "/api/schedules/{ref:path}/{action}", api_schedule_action, methods=["POST"]
        ),
        Route("/api/resources", api_resources),
    ]


def page_routes() -> list[Route]:
    return [
        Route("/schedules", page_schedules),
        Route("/schedules/{ref:path}/{action}", page_schedule_action, methods=["POST"]),
        Route("/resources", page_resources),
    ]
