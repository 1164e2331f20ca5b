"""Fixtures for the queue daemon tests: real daemons in a temp dir, and a
teardown that leaves no process behind (daemons, job wrappers, their children).
"""

from __future__ import annotations

import contextlib

import pytest
from leftovers import kill_leftovers

from xqute.queue import SchedulerService, SqliteJobScheduler


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "queue.db"


@pytest.fixture
def store(db_path):
    store = SqliteJobScheduler(db_path)
    yield store
    store.close()


@pytest.fixture
def daemon(db_path, tmp_path):
    """start(workers, **pool_opts) -> a running SchedulerService on db_path."""
    services: list[SchedulerService] = []

    def start(workers: int = 4, **opts) -> SchedulerService:
        opts.setdefault("backend_opts", {"kill_grace_s": 1})
        service = SchedulerService(db_path, workers, **opts)
        service.start()
        services.append(service)
        return service

    yield start
    for service in services:
        with contextlib.suppress(Exception):
            service.stop(now=True, timeout_s=15)
    kill_leftovers(str(tmp_path))
