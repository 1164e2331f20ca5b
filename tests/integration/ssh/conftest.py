"""Real sshd servers on loopback for the ssh backend's tests.

``scripts/services/sshd.sh start`` (idempotent, about 1 s when they already run;
run by the tests only with XQUTE_START_SERVICES=1, else they ask ``status``)
gives h1 = 127.0.0.1:2222 and h2 = 127.0.0.2:2223, key-only, root login. Without
root or sshd the tests skip saying why (and fail in CI, see ``require_service``).
Tests that stop or pause a server do it through ``servers_ctl``, which puts every
server back at teardown. Every test checks that no process of its jobs is left.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[3]
SSHD_SH = REPO / "scripts" / "services" / "sshd.sh"
STATE_DIR = Path(os.environ.get("XQUTE_SSHD_DIR", "/tmp/xqute-sshd"))
TEST_USER = "xqute-ssh-test"  # a non-root login, for "does not see the workdir"
ADDRS = {"h1": ("127.0.0.1", 2222), "h2": ("127.0.0.2", 2223)}


@dataclass(frozen=True)
class Sshd:
    key: str
    known_hosts: str

    def servers(self, *names: str, fast: bool = True, **extra) -> dict:
        """Server settings for ``names`` (h1, h2): strict host keys, and short
        timeouts so that a server that goes away is noticed in seconds."""
        args = [
            "-F",
            "/dev/null",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
        ]
        if fast:
            args += ["-o", "ConnectTimeout=1", "-o", "ServerAliveInterval=1"]
            args += ["-o", "ServerAliveCountMax=1"]
        out = {}
        for name in names or tuple(ADDRS):
            host, port = ADDRS[name]
            out[name] = {
                "host": host,
                "port": port,
                "user": "root",
                "keyfile": self.key,
                "args": args,
                **extra,
            }
        return out


def _sshd(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "XQUTE_SSHD_USER": TEST_USER}
    proc = subprocess.run(
        ["bash", str(SSHD_SH), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"sshd.sh {' '.join(args)} failed: {proc.stderr[-2000:]}")
    return proc


@pytest.fixture(scope="session")
def sshd(services) -> Sshd:
    def check() -> str | None:
        if os.geteuid() != 0:
            return "scripts/services/sshd.sh needs root"
        reason = services.run_script("sshd", env={"XQUTE_SSHD_USER": TEST_USER})
        if reason is not None:
            return reason
        want = " ".join(f"root@{host}:{port}" for host, port in ADDRS.values())
        env = (STATE_DIR / "env.sh").read_text()
        if f"XQUTE_SSH_ADDRS='{want}'" not in env:
            return f"the tests expect the servers at {want} (see XQUTE_SSHD_ADDRS)"
        return None

    services.require("sshd", check)
    return Sshd(str(STATE_DIR / "id_ed25519"), str(STATE_DIR / "known_hosts"))


class ServersCtl:
    """Stop/pause/block servers in a test; everything is undone at teardown."""

    def __init__(self) -> None:
        self.touched: set[str] = set()

    def __call__(self, action: str, name: str) -> None:
        self.touched.add(name)
        _sshd(action, name)

    def restore(self) -> None:
        if not self.touched:
            return
        status = _sshd("status", check=False).stdout
        for line in status.splitlines():
            name, _, state, *_ = line.split()
            if state == "paused":
                _sshd("resume", name)
        _sshd("unblock", *sorted(self.touched))
        _sshd("start")


@pytest.fixture
def servers_ctl(sshd):
    ctl = ServersCtl()
    yield ctl
    ctl.restore()


def leftovers(marker: str) -> list[str]:
    """Command lines of live processes that mention ``marker``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(proc.info["cmdline"] or ())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if marker in cmdline:
            found.append(f"{proc.pid}: {cmdline}")
    return found


def wait_no_leftovers(marker: str, timeout_s: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while (left := leftovers(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


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
