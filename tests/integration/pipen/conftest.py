"""pipen runs in a venv of its own, made once per session by
scripts/pipen-tests.sh, with this checkout installed as its xqute."""

from __future__ import annotations

import subprocess

import pytest
from pipen_helpers import HERE, run_script


@pytest.fixture(scope="session")
def pipen_python() -> str:
    """The python of the pipen venv, with the demo scheduler plugin installed."""
    setup = run_script("--setup", timeout_s=1200)
    assert setup.returncode == 0, setup.stderr[-3000:]
    python = setup.stdout.strip().splitlines()[-1]
    plugin = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", str(HERE / "plugin")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert plugin.returncode == 0, plugin.stderr[-3000:]
    return python
