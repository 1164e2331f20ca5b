"""Running pipen's venv: scripts/pipen-tests.sh makes it (pipen's test pins must
not touch the project's environment), with this checkout as its xqute."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "pipen-tests.sh"
HERE = Path(__file__).resolve().parent


def run_script(*args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
    )


def run_pipeline(
    python: str, scheduler: str, tmp: Path, *extra: str, timeout_s: float = 600
) -> subprocess.CompletedProcess[str]:
    """examples/pipen_readme.py in pipen's venv (``extra``: --items, --opts ...)."""
    return subprocess.run(
        [
            python,
            str(ROOT / "examples" / "pipen_readme.py"),
            f"--scheduler={scheduler}",
            f"--workdir={tmp / 'wd'}",
            f"--outdir={tmp / 'out'}",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=tmp,
    )
