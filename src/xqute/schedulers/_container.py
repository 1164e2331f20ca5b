"""Container options, command lines and ``ps`` parsing, as pure functions.

Shared by the docker/podman backend (``container.py``) and the apptainer one
(``apptainer.py``), and unit-tested without any engine. Everything a user gives
(image, paths, env values, extra args) ends up as separate argv items, never in
a shell string, and every flag takes its value in ``--flag=value`` form, so that
a value starting with ``-`` cannot become a flag of its own. Facts the code relies
on (flag spellings, ``ps`` status texts, exit codes) were checked against podman
4.3 and docker 20.10/28.2: see docs/notes/ssh-containers.md.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..resources import Resources
from ..status import JobOutcome
from .poller import Observation

__all__ = [
    "ENGINES",
    "ContainerSpec",
    "Volume",
    "apptainer_exec_argv",
    "check_host_workdir",
    "container_name",
    "engine_run_argv",
    "parse_container_options",
    "parse_ps",
    "parse_volume",
]

ENGINES = ("docker", "podman", "apptainer")
PULL_POLICIES = {
    "docker": ("never", "missing", "always"),
    "podman": ("never", "missing", "always", "newer"),
    "apptainer": ("never", "missing"),
}
# apptainer fetches these itself; "never pull" means only local images
_IMAGE_URI = re.compile(r"^[a-z][a-z0-9+.-]*://")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME_BAD = re.compile(r"[^a-z0-9-]+")
_EXITED = re.compile(r"^Exited \((-?\d+)\)")
_RUNNING_PREFIXES = ("Up", "Restarting", "Paused", "Stopping", "Removing", "Removal")
_PENDING_PREFIXES = ("Created", "Configured", "Initialized")
LABEL_RUN = "xqute.run"
LABEL_JOB = "xqute.job"


@dataclass(frozen=True, slots=True)
class Volume:
    host: str
    container: str
    mode: str | None = None  # "ro" | "rw" | None (the engine's default, rw)

    def spec(self) -> str:
        text = f"{self.host}:{self.container}"
        return f"{text}:{self.mode}" if self.mode else text


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """The validated container options of one scheduler."""

    engine: str  # docker | podman | apptainer
    bin: str  # what to execute (a name on PATH or a path)
    image: str
    entrypoint: str = "/bin/bash"
    volumes: tuple[Volume, ...] = ()
    envs: Mapping[str, str] = field(default_factory=dict)
    bin_args: tuple[str, ...] = ()
    pull: str = "never"
    remove: bool = True
    mounted_workdir: str | None = None  # None: the workdir's own absolute path


def _check_text(what: str, value: Any, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{what} {value!r} must be a string")
    if "\x00" in value or "\n" in value:
        raise ConfigError(f"{what} {value!r} must not contain NUL or newline")
    if not allow_empty and not value.strip():
        raise ConfigError(f"{what} must not be empty")
    return value


def _check_abs(what: str, path: str, engine: str) -> str:
    if not path.startswith("/"):
        raise ConfigError(f"{what} {path!r} must be an absolute path")
    if ":" in path:
        raise ConfigError(f"{what} {path!r} must not contain ':'")
    if engine == "apptainer" and "," in path:
        # apptainer splits --bind values on commas
        raise ConfigError(f"{what} {path!r} must not contain ',' with apptainer")
    return os.path.normpath(path)


def check_host_workdir(path: str, engine: str) -> str:
    """The workdir, mounted like a volume's host path (``--volume``/``--bind``
    split on ':', apptainer also on ','): refuse what would be cut apart."""
    flag = "--bind" if engine == "apptainer" else "--volume"
    for sep in ":," if engine == "apptainer" else ":":
        if sep in path:
            raise ConfigError(
                f"the workdir {path!r} cannot be mounted into {engine}'s containers:"
                f" it contains {sep!r}, which {flag} reads as a separator; use a"
                " workdir without it"
            )
    return path


def parse_volume(text: Any, engine: str = "docker") -> Volume:
    """``host:container[:ro|rw]``, both paths absolute."""
    _check_text("volume", text)
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise ConfigError(
            f"volume {text!r} is malformed; use HOST:CONTAINER or"
            " HOST:CONTAINER:ro|rw, with absolute paths"
        )
    mode = parts[2] if len(parts) == 3 else None
    if mode not in (None, "ro", "rw"):
        raise ConfigError(f"volume {text!r}: mode {mode!r} must be 'ro' or 'rw'")
    host = _check_abs(f"volume {text!r}: host path", parts[0], engine)
    ctr = _check_abs(f"volume {text!r}: container path", parts[1], engine)
    if ctr == "/":
        raise ConfigError(f"volume {text!r}: cannot mount over '/'")
    return Volume(host, ctr, mode)


def engine_of(bin_: Any) -> str:
    """docker, podman or apptainer, from ``bin`` (a name or a path to one)."""
    _check_text("bin", bin_)
    engine = os.path.basename(bin_)
    if engine not in ENGINES:
        raise ConfigError.choice("container bin", bin_, ENGINES)
    return engine


def parse_container_options(config: Mapping[str, Any]) -> ContainerSpec:
    """Validate the backend options; every error names the bad value."""
    bin_ = config.get("bin", "docker")
    engine = config.get("engine")
    if engine is None:
        engine = engine_of(bin_)
    elif engine not in ENGINES:
        raise ConfigError.choice("container engine", engine, ENGINES)
    if "image" not in config:
        raise ConfigError(
            "the container scheduler needs an image"
            " (scheduler_opts={'image': 'localhost/my-image:latest', ...})"
        )
    image = _check_text("image", config["image"])
    if image.startswith("-") or any(c.isspace() for c in image):
        raise ConfigError(f"image {image!r} must not start with '-' or contain spaces")
    entrypoint = _check_text("entrypoint", config.get("entrypoint", "/bin/bash"))
    if any(c.isspace() for c in entrypoint):
        raise ConfigError(
            f"entrypoint {entrypoint!r} must be one executable (engines do not split"
            " it); put extra arguments in bin_args or the command"
        )
    pull = config.get("pull", "never")
    if pull not in PULL_POLICIES[engine]:
        raise ConfigError.choice(
            f"pull policy for {engine}", pull, PULL_POLICIES[engine]
        )
    if engine == "apptainer" and pull == "never" and _IMAGE_URI.match(image):
        raise ConfigError(
            f"image {image!r} would be pulled from a registry, but pull is 'never';"
            " give a local .sif file or sandbox directory, or set pull='missing'"
        )
    volumes_opt = config.get("volumes", ())
    if isinstance(volumes_opt, str):
        volumes_opt = [volumes_opt]
    if not isinstance(volumes_opt, Sequence):
        raise ConfigError(f"volumes {volumes_opt!r} must be a list of strings")
    volumes = tuple(parse_volume(v, engine) for v in volumes_opt)
    envs_opt = config.get("envs", {}) or {}
    if not isinstance(envs_opt, Mapping):
        raise ConfigError(f"envs {envs_opt!r} must be a dict of NAME: value")
    envs: dict[str, str] = {}
    for key, value in envs_opt.items():
        if not isinstance(key, str) or not _ENV_NAME.match(key):
            raise ConfigError(f"environment variable name {key!r} is invalid")
        envs[key] = _check_text(f"envs[{key!r}]", str(value), allow_empty=True)
    bin_args = config.get("bin_args", ())
    if isinstance(bin_args, str) or not isinstance(bin_args, Sequence):
        raise ConfigError(
            f"bin_args {bin_args!r} must be a list of arguments,"
            " e.g. ['--hostname', 'my-job']"
        )
    for arg in bin_args:
        _check_text("bin_args item", arg, allow_empty=True)
    remove = config.get("remove", True)
    if not isinstance(remove, bool):
        raise ConfigError(f"remove {remove!r} must be true or false")
    mounted = config.get("mounted_workdir")
    if mounted is not None:
        mounted = _check_abs(
            "mounted_workdir", _check_text("mounted_workdir", mounted), engine
        )
        if mounted == "/":
            raise ConfigError("mounted_workdir cannot be '/'")
    taken = {v.container for v in volumes}
    if mounted is not None and mounted in taken:
        raise ConfigError(
            f"mounted_workdir {mounted!r} is also a volume's container path"
        )
    return ContainerSpec(
        engine=engine,
        bin=bin_,
        image=image,
        entrypoint=entrypoint,
        volumes=volumes,
        envs=envs,
        bin_args=tuple(bin_args),
        pull=pull,
        remove=remove,
        mounted_workdir=mounted,
    )


def container_name(prefix: str, run_id: str, index: int, trial: int) -> str:
    """``<prefix>-<run>-<index>-<trial>``: valid in both engines (lower case,
    ``[a-z0-9-]``, a letter first), unique per run and trial, under 64 chars."""
    clean = _NAME_BAD.sub("-", prefix.lower()).strip("-") or "xqute"
    if not clean[0].isalpha():
        clean = "x" + clean
    suffix = f"-{run_id}-{index}-{trial}"
    return clean[: max(1, 63 - len(suffix))].rstrip("-") + suffix


def _resource_flags(resources: Resources) -> list[str]:
    flags = []
    if resources.cpus:
        flags.append(f"--cpus={resources.cpus}")
    if resources.mem_mb:
        flags.append(f"--memory={resources.mem_mb}m")
    return flags


def engine_run_argv(
    spec: ContainerSpec,
    *,
    name: str,
    run_id: str,
    index: int,
    workdir: str,
    mounted_workdir: str,
    cwd: str,
    script: str,
    resources: Resources | None = None,
) -> list[str]:
    """``docker|podman run --detach ...`` for one job.

    ``workdir`` is the host path mounted at ``mounted_workdir``; ``cwd`` and
    ``script`` are container paths. Labels carry the run and the job index, so a
    run's containers can be listed with one ``ps --filter label=...``.
    """
    argv = [
        spec.bin,
        "run",
        "--detach",
        f"--name={name}",
        f"--pull={spec.pull}",
        f"--label={LABEL_RUN}={run_id}",
        f"--label={LABEL_JOB}={index}",
        f"--volume={workdir}:{mounted_workdir}",
        *(f"--volume={v.spec()}" for v in spec.volumes),
        f"--workdir={cwd}",
        *(f"--env={k}={v}" for k, v in spec.envs.items()),
        *_resource_flags(resources or Resources()),
        *spec.bin_args,
        f"--entrypoint={spec.entrypoint}",
        spec.image,
        script,
    ]
    return argv


def _apptainer_env_ok(value: str) -> bool:
    """Whether ``--env K=V`` carries the value exactly: apptainer parses --env as
    a key=value map, which CSV-splits on ',' when '=' appears twice and trims
    surrounding double quotes."""
    if '"' in value:
        return False
    return not ("=" in value and "," in value)


def apptainer_exec_argv(
    spec: ContainerSpec,
    *,
    workdir: str,
    mounted_workdir: str,
    cwd: str,
    script: str,
) -> list[str]:
    """``apptainer exec --bind ... --env ... IMAGE ENTRYPOINT SCRIPT``.

    apptainer has no daemon and no container names: the process this starts is
    the job, tracked like a local one. An env value that ``--env`` cannot carry
    exactly goes through ``APPTAINERENV_NAME`` in the environment of apptainer,
    set with ``env`` (which takes any value).
    """
    plain = {k: v for k, v in spec.envs.items() if _apptainer_env_ok(v)}
    awkward = {k: v for k, v in spec.envs.items() if k not in plain}
    prefix = ["env", *(f"APPTAINERENV_{k}={v}" for k, v in awkward.items())]
    return [
        *(prefix if awkward else []),
        spec.bin,
        "exec",
        f"--bind={workdir}:{mounted_workdir}",
        *(f"--bind={v.spec()}" for v in spec.volumes),
        f"--pwd={cwd}",
        *(f"--env={k}={v}" for k, v in plain.items()),
        *spec.bin_args,
        spec.image,
        spec.entrypoint,
        script,
    ]


def ps_argv(spec: ContainerSpec, run_id: str) -> list[str]:
    """ONE command listing every container of the run (both engines)."""
    return [
        spec.bin,
        "ps",
        "--all",
        f"--filter=label={LABEL_RUN}={run_id}",
        "--format={{.Names}}\t{{.Status}}",
    ]


def stop_argv(spec: ContainerSpec, names: Sequence[str], grace_s: float) -> list[str]:
    """TERM, then KILL after ``grace_s``, for many containers in one command.

    ``stop`` rather than ``kill``: podman's ``kill`` gives up on all names when one
    has already exited; ``stop --ignore`` (podman) skips missing ones, docker goes
    on past them (rc 1, "No such container").
    """
    argv = [spec.bin, "stop", f"--time={max(1, round(grace_s))}"]
    if spec.engine == "podman":
        argv.append("--ignore")
    return [*argv, *names]


def rm_argv(spec: ContainerSpec, names: Sequence[str]) -> list[str]:
    """Remove containers (also running ones, at once; missing ones: rc 0)."""
    argv = [spec.bin, "rm", "--force"]
    if spec.engine == "podman":
        argv.append("--time=0")  # else a running one gets TERM and 10 s
    return [*argv, *names]


def parse_ps(text: str) -> dict[str, Observation]:
    """``NAME<TAB>STATUS`` lines (``ps --format``) -> observations by name.

    ``Exited (N)`` is done with rc N: the wrapper exits with the rc it recorded,
    so 0 is a success; a non-zero exit is a failure whose details the job's files
    give when the wrapper wrote them (``job_result`` prefers them).
    """
    out: dict[str, Observation] = {}
    for line in text.splitlines():
        name, sep, status = line.partition("\t")
        name, status = name.strip(), status.strip()
        if not sep or not name:
            continue
        exited = _EXITED.match(status)
        if exited:
            rc = int(exited.group(1))
            if rc == 0:
                out[name] = Observation("done", JobOutcome.SUCCEEDED, None, 0)
            else:
                why = f"the container exited with {rc}"
                if rc == 137:
                    why += " (SIGKILL: out of memory, or killed from outside)"
                out[name] = Observation("done", JobOutcome.FAILED, why, rc)
        elif status.startswith(_RUNNING_PREFIXES):
            out[name] = Observation("running")
        elif status.startswith(_PENDING_PREFIXES):
            out[name] = Observation("pending")
        elif status.startswith("Dead"):
            out[name] = Observation(
                "done", JobOutcome.LOST, f"the container is dead ({status})"
            )
        else:  # a state this code does not know: keep following it
            out[name] = Observation("running")
    return out
