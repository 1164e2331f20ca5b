"""Shared test fixtures.

Integration tests are marked per backend (slurm, sge, ssh, container, gbatch,
service). On a machine without a service they skip, saying why; with
``XQUTE_REQUIRE_SERVICES=1`` (set by .ci/run after it started every service) a
missing service fails the test instead, so CI never skips anything real.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

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


@pytest.fixture
def workdir(tmp_path):
    """A fresh xqute workdir."""
    return tmp_path / "xqute"
