"""Shared test fixtures.

Integration tests are marked per backend (slurm, sge, ssh, container, gbatch,
service). On a machine without a service they skip, saying why; with
``XQUTE_REQUIRE_SERVICES=1`` (set by .ci/run after it started every service) a
missing service fails the test instead, so CI never skips anything real.
Backend fixtures take the ``services`` fixture for both halves of that: running
``scripts/services/<name>.sh`` and turning its failure into a skip or a failure.
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

    ``needs``: tools the service provides; when none is installed and apt-get is
    missing too, the script cannot install them, which is the reason given.
    """
    script = SERVICES_DIR / f"{name}.sh"
    if (
        needs
        and not any(shutil.which(t) for t in needs)
        and not shutil.which("apt-get")
    ):
        return f"{', '.join(needs)} not installed, and no apt-get to install it"
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
