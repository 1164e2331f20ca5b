"""Rendering the dashboard's pages: the Jinja2 environment (autoescape on,
strict: a missing value is an error, never an empty string), the filters that
format times and sizes as the CLI does, and the context every page gets.
"""

from __future__ import annotations

import json
import shlex
import time
from importlib.resources import files
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from .. import __version__
from ..cli import _format as fmt
from ..queue.schema import FINAL_STATES

__all__ = ["NAV", "ROOT", "render", "render_error", "unavailable"]

ROOT = files("xqute.web")
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(ROOT / "templates")),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(
    when=lambda ts: fmt.when(ts),
    iso=lambda ts: (
        "" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
    ),
    duration=fmt.duration,
    mem=fmt.mem,
    shorten=fmt.shorten,
    command=lambda c: c if isinstance(c, str) else shlex.join(c),
    elapsed=lambda job: fmt.elapsed(job),
    # JSON shown as text (autoescaped like any string), as the page script's
    # JSON.stringify shows it; Jinja's tojson is for scripts: it writes '>' as
    # \u003e
    json=lambda value: json.dumps(value, separators=(",", ":"), ensure_ascii=False),
)
templates = Jinja2Templates(env=_env)
NAV = [
    ("overview", "/", "Overview"),
    ("jobs", "/jobs", "Jobs"),
    ("runs", "/runs", "Runs"),
    ("schedules", "/schedules", "Schedules"),
    ("resources", "/resources", "Resources"),
    ("events", "/events", "Events"),
    ("alerts", "/alerts", "Alerts"),
]


def render(
    request: Request, template: str, page: str, status: int = 200, **data: Any
) -> Response:
    ctx = request.app.state.ctx
    logged_in = ctx.logged_in(request)
    fragment = request.query_params.get("fragment") == "1"
    context = {
        "page": page,
        "nav": NAV,
        "version": __version__,
        "db": str(ctx.store.db_path),
        "logged_in": logged_in,
        "csrf": ctx.auth.csrf if logged_in else "",
        "features": ctx.features,
        "now": time.time(),
        "final_states": FINAL_STATES,
        "fragment": fragment,
        **data,
    }
    return templates.TemplateResponse(request, template, context, status_code=status)


def render_error(request: Request, status: int, message: str) -> Response:
    try:
        return render(
            request,
            "error.html",
            "error",
            status=status,
            status_code=status,
            message=message,
        )
    except Exception:  # the error page itself failed: plain text
        return Response(
            f"{status}: {message}", status_code=status, media_type="text/plain"
        )


def unavailable(request: Request, page: str, what: str, why: str) -> Response:
    return render(request, "unavailable.html", page, what=what, why=why)


# ---------------------------------------------------------------------- login
