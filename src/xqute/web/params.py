"""Reading a request safely: query parameters with their bounds, bodies with a
size limit, and the token check every action makes.

Every bad value raises ``ConfigError`` (answered 400) naming the parameter,
the value and what is allowed; a missing or wrong token raises a 401/403
``HTTPException``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request

from ..checks import MAX_ID, row_id
from ..errors import ConfigError

__all__ = [
    "MAX_BODY",
    "MAX_ID",
    "bool_param",
    "choice",
    "form_body",
    "int_param",
    "job_id_param",
    "json_body",
    "list_param",
    "require_action",
    "str_param",
]

MAX_BODY = 1 << 20  # bytes of a JSON body or a form


def int_param(
    request: Request,
    name: str,
    default: int | None,
    lo: int,
    hi: int,
    empty_ok: bool = False,
) -> int | None:
    """An integer in [lo, hi]; ``empty_ok``: ``name=`` means the default (a
    page's form sends empty fields; the API says it is wrong)."""
    text = request.query_params.get(name)
    if text is None or (text == "" and empty_ok):
        return default
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not lo <= value <= hi:
        raise ConfigError(f"{name}={text!r} must be an integer from {lo} to {hi}")
    return value


def bool_param(request: Request, name: str) -> bool:
    text = request.query_params.get(name)
    if text is None:
        return False
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={text!r} must be true or false")


def str_param(
    request: Request, name: str, max_len: int = 200, empty_ok: bool = False
) -> str | None:
    text = request.query_params.get(name)
    if text is None or (text == "" and empty_ok):
        return None
    if not text or len(text) > max_len or "\x00" in text:
        raise ConfigError(f"{name} must be 1 to {max_len} characters, without NUL")
    return text


def list_param(request: Request, name: str, empty_ok: bool = False) -> list[str]:
    """``?state=a&state=b`` or ``?state=a,b``; an empty item is an error
    (unless ``empty_ok``: then it is skipped)."""
    values = request.query_params.getlist(name)
    items = [v for value in values for v in value.split(",")]
    if not empty_ok and "" in items:
        raise ConfigError(f"{name}: an empty value is not allowed")
    return [v for v in items if v]


def job_id_param(request: Request) -> int:
    return row_id("job id", request.path_params["job_id"])


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise HTTPException(413, f"the body is larger than {MAX_BODY} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise HTTPException(413, f"the body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request) -> Any:
    raw = await _body(request)
    if not raw.strip():
        return {}
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"the body is not valid JSON: {exc}") from exc
    except RecursionError:
        raise ConfigError("the body is not valid JSON: nested too deeply") from None


def _no_constant(name: str) -> Any:
    """NaN, Infinity, -Infinity: Python's json reads them, JSON has none."""
    raise ValueError(f"{name} is not a JSON value; use a number or a string")


async def form_body(request: Request) -> dict[str, str]:
    """An urlencoded form (the dashboard's forms): the first value of each field."""
    raw = await _body(request)
    try:
        fields = parse_qs(raw.decode(), keep_blank_values=True, max_num_fields=100)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"the form is not valid: {exc}") from exc
    return {k: v[0] for k, v in fields.items()}


def require_action(request: Request, form: dict[str, str] | None = None) -> None:
    """Raise unless the request may act: a bearer token, or the session cookie
    with the CSRF token and this server's own Origin (see ``auth.py``)."""
    ctx = request.app.state.ctx
    auth = ctx.auth
    if auth.bearer_ok(request.headers.get("authorization")):
        return
    if ctx.logged_in(request):
        csrf = request.headers.get("x-csrf-token") or (form or {}).get("csrf")
        if not auth.csrf_ok(csrf):
            raise HTTPException(
                403, "the CSRF token is missing or wrong; reload the page"
            )
        origin = request.headers.get("origin")
        if origin and origin != "null" and not _same_origin(origin, request):
            raise HTTPException(403, f"a request from {origin} may not act here")
        if origin == "null":
            raise HTTPException(403, "a request from an opaque origin may not act here")
        return
    raise HTTPException(
        401,
        "this action needs the token: send 'Authorization: Bearer <token>' (xqute"
        " service status shows it), or log in on the dashboard",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _same_origin(origin: str, request: Request) -> bool:
    parts = urlsplit(origin)
    host = request.headers.get("host", "")
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


def choice(name: str, value: str | None, allowed: Sequence[str]) -> str | None:
    if value is not None and value not in allowed:
        raise ConfigError.choice(name, value, allowed)
    return value
