"""Workflows on real pools: daemons in a temp dir (``daemon``, ``db_path`` of
tests/integration/conftest.py), and a teardown that leaves no process behind."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
from leftovers import kill_leftovers

from xqute.orchestration import Orchestrator


@pytest.fixture
def orch(db_path, tmp_path):
    o = Orchestrator(db_path)
    yield o
    o.close()
    kill_leftovers(str(tmp_path))
