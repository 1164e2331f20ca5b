"""Real sshd servers on loopback for the ssh backend's tests.

The session fixture ``sshd`` (in tests/integration/conftest.py; it starts the
servers only with XQUTE_START_SERVICES=1, else asks ``status``) gives h1 =
127.0.0.1:2222 and h2 = 127.0.0.2:2223, key-only, root login; without root or
sshd the tests skip saying why (and fail in CI, see ``require_service``).
Tests that stop or pause a server do it through ``servers_ctl``, which puts every
server back at teardown. Every test checks that no process of its jobs is left.
"""

from __future__ import annotations

import pytest
from backend_services import sshd_script
from leftovers import processes, wait_gone


class ServersCtl:
    """Stop/pause/block servers in a test; everything is undone at teardown."""

    def __init__(self) -> None:
        self.touched: set[str] = set()

    def __call__(self, action: str, name: str) -> None:
        self.touched.add(name)
        sshd_script(action, name)

    def restore(self) -> None:
        if not self.touched:
            return
        status = sshd_script("status", check=False).stdout
        for line in status.splitlines():
            name, _, state, *_ = line.split()
            if state == "paused":
                sshd_script("resume", name)
        sshd_script("unblock", *sorted(self.touched))
        sshd_script("start")


@pytest.fixture
def servers_ctl(sshd):
    ctl = ServersCtl()
    yield ctl
    ctl.restore()


#: command lines of live processes that mention a text; waiting for none
leftovers = processes
wait_no_leftovers = wait_gone


@pytest.fixture
def marker(request, workdir):
    """A unique token for this test's job commands (``sleep 30.<token>``); at
    teardown, no process that mentions it or the workdir may still run."""
    token = f"{abs(hash(request.node.nodeid)) % 10**6:06d}"
    yield token
    assert wait_no_leftovers(str(workdir)) == []
    assert wait_no_leftovers(f".{token}") == []


@pytest.fixture
def procs():
    """``procs(text)``: command lines of live processes that mention ``text``."""
    return leftovers
