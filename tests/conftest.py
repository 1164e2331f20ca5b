"""Shared test fixtures.

Integration tests are marked per backend (slurm, sge, ssh, container, gbatch,
service). On a machine without a service they skip, saying why and how to start
it; with ``XQUTE_REQUIRE_SERVICES=1`` (set by .ci/run after it started every
service) a missing service fails the test instead, so CI never skips anything
real. Starting services (which installs Debian packages and runs daemons as
root) is opt-in: only with ``XQUTE_START_SERVICES=1`` (set by .ci/run) do the
fixtures run ``scripts/services/<name>.sh start``; otherwise they only ask
``<name>.sh status``. Backend fixtures take the ``services`` fixture for both
halves of that: running the script and turning its failure into a skip or a
failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES_DIR = ROOT / "scripts" / "services"
REQUIRE_SERVICES = os.environ.get("XQUTE_REQUIRE_SERVICES", "") not in ("", "0")
START_SERVICES = os.environ.get("XQUTE_START_SERVICES", "") not in ("", "0")
#: actions that install packages or start daemons: run only when opted in
STARTING_ACTIONS = ("start", "setup")


def require_service(name: str, check: Callable[[], str | None]) -> None:
    """Skip (or, in CI, fail) when ``check()`` returns a reason it is unusable."""
    reason = check()
    if reason is None:
        return
    message = f"{name} unavailable: {reason}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} (XQUTE_REQUIRE_SERVICES is set)", pytrace=False)
    pytest.skip(message)


def run_service_script(
    name: str,
    action: str = "start",
    *,
    needs: Sequence[str] = (),
    timeout_s: float = 600,
    env: dict[str, str] | None = None,
) -> str | None:
    """Run ``scripts/services/<name>.sh ACTION``; None when it worked, else why not.

    A starting action (start, setup) runs only with ``XQUTE_START_SERVICES=1``;
    without it, ``<name>.sh status`` says whether the service already runs, and
    the reason given when it does not says how to start it.
    ``needs``: tools the service provides; when none is installed and apt-get is
    missing too, the script cannot install them, which is the reason given.
    """
    script = SERVICES_DIR / f"{name}.sh"
    if action in STARTING_ACTIONS and not START_SERVICES:
        reason = _run(script, "status", 60, env)
        if reason is None:
            return None
        return (
            f"{reason}; start it with `bash scripts/services/{name}.sh {action}`"
            " (as root), or let the tests start it: XQUTE_START_SERVICES=1"
            " python -m pytest"
        )
    if (
        needs
        and not any(shutil.which(t) for t in needs)
        and not shutil.which("apt-get")
    ):
        return f"{', '.join(needs)} not installed, and no apt-get to install it"
    return _run(script, action, timeout_s, env)


def _run(
    script: Path, action: str, timeout_s: float, env: dict[str, str] | None
) -> str | None:
    try:
        proc = subprocess.run(
            ["bash", str(script), action],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env={**os.environ, **(env or {})},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{script.name} {action} failed: {exc}"
    if proc.returncode != 0:
        said = (proc.stderr or proc.stdout).strip()[-500:]
        return f"{script.name} {action} failed: {said}"
    return None


@pytest.fixture(scope="session")
def services() -> SimpleNamespace:
    """``services.require(name, check)`` and ``services.run_script(name, ...)``."""
    return SimpleNamespace(require=require_service, run_script=run_service_script)


@pytest.fixture
def workdir(tmp_path):
    """A fresh xqute workdir."""
    return tmp_path / "xqute"
