"""The queue daemon's HTTP face: a JSON API, Prometheus ``/metrics``, and a
dashboard, served by ``xqute service start --http 127.0.0.1:8765``.

Needs the ``web`` extra (``pip install 'xqute[web]'``: starlette, uvicorn,
jinja2, prometheus-client); nothing here is imported by ``xqute submit`` or
``xqute queue``. ``auth`` (the token file) needs none of it.

- ``server.HttpServer``: uvicorn on the daemon's event loop.
- ``app.create_app``: the Starlette app; ``api`` (JSON), ``pages`` (HTML),
  ``events`` (SSE), ``openapi`` (the API's description).
- ``auth``: the token, the session cookie, CSRF; see its docstring for who
  may read and who may act.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import WebContext, create_app
    from .server import HttpServer

_LAZY = {"HttpServer": ".server", "WebContext": ".app", "create_app": ".app"}

__all__ = ["HttpServer", "WebContext", "create_app"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'xqute.web' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value
