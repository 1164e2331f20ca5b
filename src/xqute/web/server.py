"""The daemon's HTTP server: uvicorn on the daemon's own event loop.

``HttpServer.start()`` binds the socket itself (so "address in use" is a
clear ``ServiceError`` at start, not a log line), serves the app, and writes
``<db stem>.http`` (user-only JSON: url, pid, token file) so that ``xqute
service status`` and clients find it; ``stop()`` closes the streams and the
server and removes that file. uvicorn's own signal handling is switched off:
the daemon's handlers stay in charge.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

import uvicorn

from ..errors import ServiceError
from ..monitoring.rules import HttpConfig, MonitoringConfig
from ..queue.store import SqliteJobScheduler
from .app import WebContext, create_app
from .auth import Auth, ensure_token
from .events import EventHub
from .metrics_endpoint import registry_of

__all__ = ["HttpServer", "http_info_path", "token_path"]

logger = logging.getLogger("xqute.web")


def token_path(store: SqliteJobScheduler, http: HttpConfig | None = None) -> Path:
    if http is not None and http.token_file:
        return Path(os.path.expanduser(http.token_file)).absolute()
    return store.sibling(".token")


def http_info_path(store: SqliteJobScheduler) -> Path:
    return store.sibling(".http")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Any:  # the daemon handles signals
        yield


class HttpServer:
    """Serves the API and the dashboard of ``store`` while the daemon runs."""

    def __init__(
        self,
        store: SqliteJobScheduler,
        http: HttpConfig,
        monitoring: MonitoringConfig | None = None,
    ) -> None:
        self.store = SqliteJobScheduler(store.db_path)  # connections of its own
        self.http = http
        self.monitoring = monitoring or MonitoringConfig(http=http)
        self.url: str | None = None
        self.ctx: WebContext | None = None
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        """Bind, serve, write the info file; the URL."""
        token_file = token_path(self.store, self.http)
        token = ensure_token(token_file)
        auth = Auth(token, self.http.loopback)
        ctx = WebContext(self.store, auth, self.http, self.monitoring)
        ctx.events = EventHub(self.store)
        registry_of(ctx)  # the job tracker counts from now
        ctx.job_counts.warm()  # a huge queue is counted before the first visit
        self.ctx = ctx
        sock = _bind(self.http)
        config = uvicorn.Config(
            create_app(ctx),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            server_header=False,
            proxy_headers=False,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise ServiceError("the HTTP server stopped while starting")
            await asyncio.sleep(0.01)
        host, port = sock.getsockname()[:2]
        self.url = HttpConfig(
            host=self.http.host if host != "::" else "::", port=port
        ).url
        _write_private(
            http_info_path(self.store),
            {"url": self.url, "pid": os.getpid(), "token_file": str(token_file)},
        )
        logger.info("HTTP API and dashboard on %s (token in %s)", self.url, token_file)
        return self.url

    async def stop(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            info = http_info_path(self.store)
            if json.loads(info.read_text()).get("pid") == os.getpid():
                info.unlink()
        if self.ctx is not None and self.ctx.events is not None:
            await self.ctx.events.close()
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.store.close()


def _bind(http: HttpConfig) -> socket.socket:
    family = socket.AF_INET6 if ":" in http.host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say
    # so, and without it each keep-alive response waits ~40 ms (Nagle against
    # the client's delayed ACK)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((http.host, http.port))
    except OSError as exc:
        sock.close()
        raise ServiceError(
            f"cannot listen on {http.url}: {exc.strerror or exc}"
        ) from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _write_private(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)
