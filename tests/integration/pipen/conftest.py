"""pipen runs in a venv of its own, made once per session by
scripts/pipen-tests.sh, with this checkout installed as its xqute."""

from __future__ import annotations

import subprocess

import pytest
from pipen_helpers import HERE, run_script


@pytest.fixture(scope="session")
def pipen_python(services) -> str:
    """The python of the pipen venv, with the demo scheduler plugin installed.

    Making it installs packages from the registry: without one, the tests skip
    (and fail in CI, under XQUTE_REQUIRE_SERVICES)."""
    made: dict[str, str] = {}

    def make() -> str | None:
        setup = run_script("--setup", timeout_s=1200)
        if setup.returncode != 0:
            return f"scripts/pipen-tests.sh --setup failed: {setup.stderr[-1500:]}"
        made["python"] = python = setup.stdout.strip().splitlines()[-1]
        plugin = subprocess.run(
            [python, "-m", "pip", "install", "-q", "--no-deps", str(HERE / "plugin")],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if plugin.returncode != 0:
            return f"installing the demo plugin failed: {plugin.stderr[-1500:]}"
        return None

    services.require("pipen", make)
    return made["python"]
