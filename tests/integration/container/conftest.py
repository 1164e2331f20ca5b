"""Real podman and docker for the container backend's tests.

The session fixture runs ``scripts/services/containers.sh setup`` (idempotent:
about 1 s when everything is there; only with XQUTE_START_SERVICES=1, else it
asks ``status``) and reads which engines passed its smoke
test; a test asks for an engine with the ``engine`` fixture, which skips (or
fails, under XQUTE_REQUIRE_SERVICES=1) with the reason when it is unusable.
Every test names its containers ``xqtest-...``; they are removed afterwards,
whatever the test did.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "services" / "containers.sh"
PREFIX = "xqtest"


def _read_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = " ".join(shlex.split(value))
    return env


@pytest.fixture(scope="session")
def container_services(services) -> dict[str, object]:
    """{"engines": [...], "image": ..., "error": reason or None}."""
    error = services.run_script("containers", "setup", timeout_s=900)
    env_file = Path(os.environ.get("XQUTE_CT_DIR", "/tmp/xqute-containers")) / "env.sh"
    if not env_file.exists():
        error = error or f"no {env_file}: bash scripts/services/containers.sh setup"
        return {"engines": [], "image": None, "error": error}
    env = _read_env(env_file)
    engines = env.get("XQUTE_CT_ENGINES", "").split()
    if error is not None:  # set up once, but not all is well now: which engine?
        engines = [e for e in engines if _healthy(e)]
    return {
        "engines": engines,
        "image": env.get("XQUTE_CT_IMAGE", "localhost/xqute-test:latest"),
        "error": error,
    }


def _healthy(engine: str) -> bool:
    """What ``containers.sh status`` says of one engine (it reports both)."""
    out = subprocess.run(
        ["bash", str(SCRIPT), "status"], capture_output=True, text=True, timeout=120
    ).stdout
    if engine == "podman":
        return "podman ok" in out
    return any("answers" in ln and "present" in ln for ln in out.splitlines())


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
