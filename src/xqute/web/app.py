"""The daemon's web app: the JSON API (``/api/...``), ``/metrics``, and the
dashboard (``/``), as one Starlette app.

Every response carries ``X-Frame-Options: DENY``, ``nosniff``, no referrer
and a Content-Security-Policy that allows only this server's own scripts and
styles (no inline script: user strings in a page can never run). No CORS
headers are ever sent, so other sites' pages cannot read the API. Errors are
JSON under ``/api`` (``{"error": "..."}``) and a page elsewhere; an unexpected
one is logged and answered 500 without a traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import ConfigError, StoreError, WorkflowError, XquteError
from ..monitoring.refreshed import Refreshed
from ..monitoring.rules import HttpConfig, MonitoringConfig
from ..queue.store import SqliteJobScheduler
from .auth import SESSION_COOKIE, Auth
from .overview import job_counts
from .queries import Features

__all__ = ["WebContext", "create_app"]

logger = logging.getLogger("xqute.web")

SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # no-referrer would make Origin null
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
        b" connect-src 'self'; form-action 'self'; frame-ancestors 'none';"
        b" base-uri 'none'",
    ),
    (b"cache-control", b"no-store"),
]


class WebContext:
    """What every endpoint needs (``request.app.state.ctx``)."""

    def __init__(
        self,
        store: SqliteJobScheduler,
        auth: Auth,
        http: HttpConfig,
        monitoring: MonitoringConfig,
    ) -> None:
        self.store = store
        self.auth = auth
        self.http = http
        self.monitoring = monitoring
        self.features = Features(store)
        # the overview's counts: fresh while cheap, else refreshed behind
        self.job_counts = Refreshed(lambda: job_counts(store, self.features))
        self.events: Any = None  # the EventHub, set by the server
        self.metrics: Any = None  # the metrics registry, built on first scrape
        self._orchestrator: Any = None

    def orchestrator(self) -> Any:
        """The Orchestrator the actions on runs go through (made on first use:
        it loads the definitions' models)."""
        if self._orchestrator is None:
            from ..orchestration import Orchestrator

            self._orchestrator = Orchestrator(self.store.db_path)
        return self._orchestrator

    def logged_in(self, request: Request) -> bool:
        return self.auth.session_ok(request.cookies.get(SESSION_COOKIE))


def create_app(ctx: WebContext) -> Starlette:
    from . import api, pages

    routes = [*api.routes(), *pages.routes(ctx.http.dashboard)]
    app = Starlette(
        routes=routes,
        exception_handlers={
            HTTPException: _http_error,
            XquteError: _xqute_error,
            Exception: _unexpected,
        },
    )
    app.state.ctx = ctx
    return _Guard(app, ctx)  # type: ignore[return-value]


def wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api") or path in ("/metrics", "/healthz")


def error_response(request: Request, status: int, message: str) -> Response:
    if wants_json(request):
        return JSONResponse({"error": message}, status_code=status)
    from .render import render_error

    return render_error(request, status, message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no page {request.url.path}"
    elif exc.status_code == 405 and message == "Method Not Allowed":
        message = f"{request.method} is not allowed on {request.url.path}"
    response = error_response(request, exc.status_code, message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _xqute_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, LookupError):
        return error_response(request, 404, str(exc))
    if isinstance(exc, ConfigError):
        return error_response(request, 400, str(exc))
    if isinstance(exc, StoreError):
        return error_response(request, 503, str(exc))
    if isinstance(exc, WorkflowError):  # "still running; cancel it first" ...
        return error_response(request, 409, str(exc))
    return error_response(request, 400, str(exc))


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(request, 500, "internal error (see the daemon's log)")


ASGIApp = Callable[
    [dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]],
    Awaitable[None],
]


class _Guard:
    """ASGI middleware: the Host check, read access, and the security headers
    on every response (streams included)."""

    def __init__(self, app: Starlette, ctx: WebContext) -> None:
        self.app = app
        self.ctx = ctx
        self._secured = {k for k, _ in SECURITY_HEADERS}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    h
                    for h in message.get("headers", [])
                    if h[0].lower() not in self._secured
                ]
                message["headers"] = headers + SECURITY_HEADERS
            await send(message)

        request = Request(scope)
        denied = self._check(request)
        if denied is not None:
            await denied(scope, receive, send_secured)
            return
        await self.app(scope, receive, send_secured)

    def _check(self, request: Request) -> Response | None:
        auth = self.ctx.auth
        if not auth.host_ok(request.headers.get("host")):
            return _plain_error(
                request,
                400,
                "this server answers only to a loopback Host name"
                " (127.0.0.1, localhost, [::1])",
            )
        if request.method not in ("GET", "HEAD") or auth.loopback:
            return None  # actions check the token themselves (api/pages)
        path = request.url.path
        if path in ("/login", "/healthz") or path.startswith("/static/"):
            return None
        if auth.bearer_ok(request.headers.get("authorization")) or self.ctx.logged_in(
            request
        ):
            return None
        if wants_json(request):
            return _plain_error(
                request,
                401,
                "this server needs the token: send 'Authorization: Bearer <token>'",
            )
        from starlette.responses import RedirectResponse

        return RedirectResponse("/login", status_code=303)


def _plain_error(request: Request, status: int, message: str) -> Response:
    return Response(
        json.dumps({"error": message}),
        status_code=status,
        media_type="application/json",
        headers={"www-authenticate": "Bearer"} if status == 401 else None,
    )
