"""Workflows on real pools: daemons in a temp dir (the queue's fixtures), and a
teardown that leaves no process behind."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
from leftovers import kill_leftovers

from xqute.orchestration import Orchestrator
from xqute.queue import SchedulerService


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "queue.db"


@pytest.fixture
def orch(db_path, tmp_path):
    o = Orchestrator(db_path)
    yield o
    o.close()
    kill_leftovers(str(tmp_path))


@pytest.fixture
def daemon(db_path):
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
