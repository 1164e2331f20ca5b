"""Unit tests keep their temporary files in memory (/dev/shm) when they can.

They test no filesystem, but they make ~190 SQLite dbs (8 fsyncs each) and
~1,500 job files: on this VM's busy ext4 root, waiting for it cost the suite
8-26 s of wall time at load 8-11 (docs/performance.md: the root is slow for
minutes after mass deletions). ``tmp_path`` here is a fresh folder under one
per-session folder in /dev/shm, removed at the session's end; with
``--basetemp``, or without a writable /dev/shm, it is pytest's own.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SHM = Path("/dev/shm")


@pytest.fixture(scope="session")
def _memory_tmp_root(request: pytest.FixtureRequest) -> Iterator[Path | None]:
    if request.config.option.basetemp or not (
        SHM.is_dir() and os.access(SHM, os.W_OK | os.X_OK)
    ):
        yield None
        return
    root = Path(tempfile.mkdtemp(prefix="xqute-unit-", dir=SHM))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def tmp_path(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    _memory_tmp_root: Path | None,
) -> Path:
    name = re.sub(r"[\W]", "_", request.node.name)[:30]
    if _memory_tmp_root is None:
        return tmp_path_factory.mktemp(name, numbered=True)
    return Path(tempfile.mkdtemp(prefix=name, dir=_memory_tmp_root))
