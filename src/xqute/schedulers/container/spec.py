"""The container backend's options, checked and parsed into a ``ContainerSpec``.

Shared by the docker/podman backend (``docker.py``) and the apptainer one
(``apptainer.py``), and unit-tested without any engine; ``commands.py`` turns a
spec into command lines. Paths, env names and values, the image and the pull
policy are checked here, before anything runs: the constructor raises
``ConfigError`` naming the bad value; ``check_engine_and_volumes`` (at start:
it looks at the machine) checks what exists.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...errors import BackendError, ConfigError
from ..helpers.names import container_name

__all__ = [
    "CONTAINER_OPTIONS",
    "ENGINES",
    "ContainerSpec",
    "Volume",
    "check_engine_and_volumes",
    "check_host_workdir",
    "container_name",
    "engine_of",
    "parse_container_options",
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


CONTAINER_OPTIONS: dict[str, str] = {
    "image": "the image to run jobs in (required); use the full name, e.g."
    " localhost/my-image:latest",
    "bin": "the engine: docker (default), podman or apptainer (a name or a path)",
    "entrypoint": "the executable that runs the wrapped script (default /bin/bash)",
    "volumes": "extra bind mounts, 'HOST:CONTAINER[:ro|rw]' (absolute paths)",
    "envs": "environment variables set in the container, {NAME: value}",
    "remove": "remove each container once its result is read (default true)",
    "bin_args": "extra arguments for 'run' / 'exec', e.g. ['--hostname', 'h']",
    "pull": "image pull policy: never (default), missing, always",
    "mounted_workdir": "where the workdir is mounted in the container"
    " (default: the same absolute path as on the host)",
    "engine": "docker, podman or apptainer, when bin's name does not say which"
    " (e.g. a wrapper script)",
}


def check_engine_and_volumes(spec: ContainerSpec) -> None:
    """The engine is installed and every volume's host path exists (at start:
    the constructor does no I/O)."""
    if shutil.which(spec.bin) is None:
        raise BackendError(f"container engine {spec.bin!r} was not found")
    for volume in spec.volumes:
        if not os.path.exists(volume.host):
            raise ConfigError(
                f"volume {volume.spec()!r}: host path {volume.host!r} does not"
                " exist (podman and apptainer refuse it, docker would create it as"
                " root)"
            )
