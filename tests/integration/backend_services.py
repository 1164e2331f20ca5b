"""How the integration tests reach each real service: start it, check it can take
jobs, and talk to it. The session fixtures in ``conftest.py`` (this folder) call
these, so that both the per-backend folders and the shared backend suite
(``backends/``) use one cluster, one pair of sshd servers, one set of container
engines and one gcloud simulator setup. Services are started only through the
``services`` fixture's ``run_script`` (tests/conftest.py), which does so only
with XQUTE_START_SERVICES=1 and otherwise asks ``<name>.sh status``.

Each ``check_*`` returns None when the service is usable, else why not (the
fixture turns that into a skip, or a failure under XQUTE_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "scripts" / "services"

# ---------------------------------------------------------------------- sshd
SSHD_SH = SERVICES / "sshd.sh"
SSHD_DIR = Path(os.environ.get("XQUTE_SSHD_DIR", "/tmp/xqute-sshd"))
SSH_TEST_USER = "xqute-ssh-test"  # a non-root login, for "does not see the workdir"
SSH_ADDRS = {"h1": ("127.0.0.1", 2222), "h2": ("127.0.0.2", 2223)}


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
        for name in names or tuple(SSH_ADDRS):
            host, port = SSH_ADDRS[name]
            out[name] = {
                "host": host,
                "port": port,
                "user": "root",
                "keyfile": self.key,
                "args": args,
                **extra,
            }
        return out


def sshd_script(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``scripts/services/sshd.sh ARGS`` (start, stop NAME, pause NAME ...)."""
    env = {**os.environ, "XQUTE_SSHD_USER": SSH_TEST_USER}
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


def check_sshd(run_script: Callable[..., str | None]) -> str | None:
    """``run_script``: the ``services`` fixture's (it starts the servers only
    with XQUTE_START_SERVICES=1, else asks ``sshd.sh status``)."""
    if os.geteuid() != 0:
        return "scripts/services/sshd.sh needs root"
    reason = run_script("sshd", env={"XQUTE_SSHD_USER": SSH_TEST_USER})
    if reason is not None:
        return reason
    want = " ".join(f"root@{host}:{port}" for host, port in SSH_ADDRS.values())
    env = (SSHD_DIR / "env.sh").read_text()
    if f"XQUTE_SSH_ADDRS='{want}'" not in env:
        return f"the tests expect the servers at {want} (see XQUTE_SSHD_ADDRS)"
    return None


def sshd_handle() -> Sshd:
    return Sshd(str(SSHD_DIR / "id_ed25519"), str(SSHD_DIR / "known_hosts"))


# ---------------------------------------------------------------------- containers
CONTAINERS_SH = SERVICES / "containers.sh"


def _read_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = " ".join(shlex.split(value))
    return env


def setup_containers(run_script: Callable[..., str | None]) -> dict[str, object]:
    """``containers.sh setup`` through ``run_script`` (the ``services``
    fixture's: only with XQUTE_START_SERVICES=1, else it asks ``status``):
    {"engines": [...], "image": ..., "error": why not all is well, or None}."""
    error = run_script("containers", "setup", timeout_s=900)
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
        ["bash", str(CONTAINERS_SH), "status"],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    if engine == "podman":
        return "podman ok" in out
    return any("answers" in ln and "present" in ln for ln in out.splitlines())


# ---------------------------------------------------------------------- gcloud
GCLOUD_DIR = ROOT / "tests" / "tools" / "gcloud"
GCLOUD = GCLOUD_DIR / "gcloud"
GCS_BUCKET = "xqute-test"


def check_gcloud_simulator() -> str | None:
    try:
        import cloudpathlib  # noqa: F401
    except ImportError:
        return "cloudpathlib is not installed (pip install -e '.[test]')"
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return "the simulator's per-job mounts (namespace mode) need root and unshare"
    try:
        proc = subprocess.run(
            [str(GCLOUD), "version"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{GCLOUD} does not run: {exc}"
    return None if proc.returncode == 0 else proc.stderr.strip()


def gcloud_sim_env(state: Path, buckets: Path) -> dict[str, str]:
    """The environment that makes ``gcloud`` the simulator, with fast delays."""
    return {
        "GBATCH_SIM_DIR": str(state),
        "GBATCH_SIM_BUCKETS_DIR": str(buckets),
        "GBATCH_SIM_QUEUE_DELAY_S": "0.05",
        "GBATCH_SIM_SCHEDULE_DELAY_S": "0.05",
        "GBATCH_SIM_DELETE_DELAY_S": "0.5",
        "GBATCH_SIM_KILL_GRACE_S": "1",
        "GBATCH_SIM_MOUNT_MODE": "namespace",
        "PATH": f"{GCLOUD_DIR}{os.pathsep}{os.environ['PATH']}",
    }


def gcs_client(buckets: Path, cache: Path):
    """A cloudpathlib client mapping gs://BUCKET/... to ``buckets/BUCKET/...``."""
    from cloudpathlib.enums import FileCacheMode
    from cloudpathlib.local import LocalGSClient

    return LocalGSClient(
        local_storage_dir=buckets,
        file_cache_mode=FileCacheMode.close_file,
        # not the default TemporaryDirectory, which warns when collected
        local_cache_dir=cache,
    )


# ---------------------------------------------------------------------- tools
def logging_wrapper(tool: str, folder: Path) -> tuple[Path, Path]:
    """An executable ``folder/tool`` that logs its arguments to the returned log
    file, one call a line, then execs the real ``tool`` (bench/cluster.py too)."""
    real = shutil.which(tool)
    if real is None:
        raise FileNotFoundError(f"{tool} not found: is the cluster installed?")
    log = folder / f"{tool}.calls"
    wrapper = folder / tool
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper, log
