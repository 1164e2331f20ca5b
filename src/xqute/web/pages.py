"""The dashboard: server-rendered pages (Jinja2, autoescaped), and their live
parts as fragments of the same templates.

A page's live part is an element with ``data-live="<url>"``: ``xqute.js``
fetches the URL with ``?fragment=1`` every few seconds (or when an event
arrives) and swaps it in, so the HTML is rendered, and escaped, in one place.
Actions are plain forms (POST + the CSRF token, then a redirect back), so they
work without the script too. A part of xqute whose tables are not in this db
shows "not available".
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..monitoring import alert_store
from ..queue.requests import parse_states
from ..queue.schema import STATES
from . import policy_pages, runs
from .auth import SESSION_COOKIE
from .overview import overview as overview_data
from .params import (
    bool_param,
    form_body,
    int_param,
    job_id_param,
    list_param,
    require_action,
    str_param,
)
from .render import ROOT, render, unavailable

__all__ = ["routes"]


# ---------------------------------------------------------------------- pages
def overview(request: Request) -> Response:
    ctx = request.app.state.ctx
    data = overview_data(ctx.store, ctx.features, ctx.job_counts.get())
    return render(request, "overview.html", "overview", data=data)


def jobs(request: Request) -> Response:
    ctx = request.app.state.ctx
    states = list_param(request, "state", empty_ok=True)
    name = str_param(request, "name", empty_ok=True)
    namespace = str_param(request, "namespace", empty_ok=True)
    limit = int_param(request, "limit", 100, 1, 1000, empty_ok=True) or 100
    parse_states(states or None)
    rows = ctx.store.list_jobs(
        state=states or None, name=name, limit=limit + 1, namespace=namespace
    )
    more = len(rows) > limit
    query = urlencode(
        [("state", s) for s in states]
        + [(k, v) for k, v in (("name", name), ("namespace", namespace)) if v]
        + [("limit", str(limit))]
    )
    return render(
        request,
        "jobs.html",
        "jobs",
        jobs=rows[:limit],
        more=more,
        states=states,
        name=name or "",
        namespace=namespace or "",
        limit=limit,
        all_states=STATES,
        query=query,
    )


def job(request: Request) -> Response:
    ctx = request.app.state.ctx
    job_id = job_id_param(request)
    info = ctx.store.get_job_status(job_id)
    return render(request, "job.html", "jobs", job=info)


async def cancel(request: Request) -> Response:
    form = await form_body(request)
    require_action(request, form)
    job_id = job_id_param(request)
    from starlette.concurrency import run_in_threadpool

    await run_in_threadpool(request.app.state.ctx.store.cancel_job, job_id)
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)


def alerts(request: Request) -> Response:
    ctx = request.app.state.ctx
    firing = bool_param(request, "firing")
    rows = alert_store.list_alerts(ctx.store.db, firing) if ctx.features.alerts else []
    rules = ctx.monitoring.rules
    return render(
        request, "alerts.html", "alerts", alerts=rows, rules=rules, firing=firing
    )


def events(request: Request) -> Response:
    ctx = request.app.state.ctx
    if not ctx.features.events:
        return unavailable(
            request,
            "events",
            "The event stream",
            "this db has no events table (it comes with workflows)",
        )
    from .events import last_event_id, read_events

    last = last_event_id(ctx.store)
    recent = read_events(ctx.store, max(0, last - 100), "", [], 100)
    return render(request, "events.html", "events", events=recent, cursor=last)


def login_page(request: Request) -> Response:
    return render(request, "login.html", "login", error="", next=_next(request))


async def login(request: Request) -> Response:
    form = await form_body(request)
    ctx = request.app.state.ctx
    target = _safe_next(form.get("next"))
    if not ctx.auth.token_ok(form.get("token")):
        return render(
            request,
            "login.html",
            "login",
            status=401,
            error="That is not the token.",
            next=target,
        )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE, ctx.auth.session, httponly=True, samesite="strict", path="/"
    )
    return response


async def logout(request: Request) -> Response:
    form = await form_body(request)
    require_action(request, form)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _next(request: Request) -> str:
    return _safe_next(request.query_params.get("next"))


def _safe_next(target: str | None) -> str:
    """Only a path of this server (never //host or a scheme): no open redirect."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
    ):
        return "/"
    return target


def routes(dashboard: bool = True) -> list[BaseRoute]:
    if not dashboard:
        return []
    return [
        Route("/", overview),
        Route("/jobs", jobs),
        Route("/jobs/{job_id}", job),
        Route("/jobs/{job_id}/cancel", cancel, methods=["POST"]),
        *runs.page_routes(),
        *policy_pages.page_routes(),
        Route("/events", events),
        Route("/alerts", alerts),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(ROOT / "static")), name="static"),
    ]
