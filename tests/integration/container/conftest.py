"""Real podman and docker for the container backend's tests.

The session fixture ``container_services`` (tests/integration/conftest.py)
runs ``scripts/services/containers.sh setup`` (idempotent: about 1 s when
everything is there; only with XQUTE_START_SERVICES=1, else it asks
``status``) and reads which engines passed its smoke test; a test
asks for an engine with the ``engine`` fixture, which skips (or fails, under
XQUTE_REQUIRE_SERVICES=1) with the reason when it is unusable.
Every test names its containers ``xqtest-...``; they are removed afterwards,
whatever the test did.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

PREFIX = "xqtest"


@pytest.fixture(params=["podman", "docker"])
def engine(request, container_services, services) -> str:
    name = request.param

    def check() -> str | None:
        if name in container_services["engines"]:
            return None
        return container_services["error"] or f"{name} did not pass the smoke test"

    services.require(name, check)
    yield name
    _remove_test_containers(name)


@pytest.fixture
def image(container_services) -> str:
    return str(container_services["image"])


def _remove_test_containers(engine: str) -> None:
    names = subprocess.run(
        [engine, "ps", "--all", "--quiet", f"--filter=name=^{PREFIX}-"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    if names:
        argv = [engine, "rm", "--force"]
        if engine == "podman":
            argv.append("--time=0")
        subprocess.run([*argv, *names], capture_output=True, timeout=120)


@pytest.fixture
def logged_engine(engine, tmp_path) -> tuple[str, Path]:
    """(bin, log): an executable named like the engine that logs every call
    (one line of argv) and then runs the real one."""
    real = subprocess.run(
        ["bash", "-c", f"command -v {engine}"], capture_output=True, text=True
    ).stdout.strip()
    folder = tmp_path / "bin"
    folder.mkdir()
    log = tmp_path / f"{engine}-calls.log"
    wrapper = folder / engine
    wrapper.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$*" >> {shlex.quote(str(log))}\n'
        f'exec {shlex.quote(real)} "$@"\n'
    )
    wrapper.chmod(0o755)
    log.touch()
    return str(wrapper), log
