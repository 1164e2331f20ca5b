"""Fixtures of the HTTP API and dashboard tests: a real daemon serving HTTP on
loopback (``web_daemon``). Teardown leaves no process behind."""

from __future__ import annotations

import contextlib

import pytest
from web_helpers import Client, kill_leftovers

from xqute.queue import SchedulerService


@pytest.fixture
def web_daemon(db_path, tmp_path):
    """start(workers=2, monitoring=None, **opts) -> a Client of a running daemon
    serving HTTP on 127.0.0.1 (any free port)."""
    services: list[SchedulerService] = []
    clients: list[Client] = []

    def start(workers: int = 2, monitoring=None, **opts) -> Client:
        opts.setdefault("backend_opts", {"kill_grace_s": 1})
        service = SchedulerService(
            db_path, workers, http="127.0.0.1:0", monitoring=monitoring, **opts
        )
        info = service.start()
        services.append(service)
        token = (tmp_path / "queue.token").read_text().strip()
        assert info["http"]["url"].startswith("http://127.0.0.1:")
        clients.append(Client(info["http"]["url"], token, service))
        return clients[-1]

    yield start
    for client in clients:
        client.close()
    for service in services:
        with contextlib.suppress(Exception):
            service.stop(now=True, timeout_s=15)
    kill_leftovers(str(tmp_path))
