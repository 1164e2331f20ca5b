"""Where a job's files are, seen from inside a container or a cloud VM (xqute
2.x's mount rules, as a pure function).

The 2.x container and gbatch schedulers take ``mount`` ("HOST:MOUNTED", a list
of them), ``mount_as_cwd`` (a HOST folder that becomes the job's working
directory, mounted at ``<root>/.cwd``), ``cwd`` (the job's working directory,
inside a mount) and ``workdir``; from those follow the volumes, the workdir on
both sides, and the job's working directory:

- a relative workdir lives in the working directory (``mount_as_cwd``'s host
  folder, or the host side of the mount that holds ``cwd``); ``cwd`` outside
  every mount is an error then;
- the workdir is mounted on its own (at ``mounted_workdir``, by default
  ``<root>/<DEFAULT_WORKDIR_NAME>``) unless a mount already holds it;
- 2.x's named mounts (``NAME=HOST``) are not supported (refused);
- a mount given twice is kept once; two hosts at one mounted path, or a
  malformed mount, are errors; a mount nested in another with the same relative
  path on both sides is redundant and dropped.

Hosts are local paths or ``gs://`` URLs; mounted paths are absolute POSIX paths.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from ..errors import ConfigError

__all__ = ["MountPlan", "one_of", "parse_mounts", "plan_mounts"]


@dataclass(frozen=True, slots=True)
class MountPlan:
    mounts: tuple[tuple[str, str], ...]  # (host, mounted), the workdir's last
    workdir: str  # the workdir as the driver sees it
    mounted_workdir: str  # ... and as the job sees it
    cwd: str | None  # the job's working directory, as the job sees it


def one_of(what: str, a: Any, b: Any) -> Any:
    """``a`` or ``b`` (2.x's option and its alias), refusing both."""
    if a and b:
        raise ConfigError(f"{what} {a!r} and {b!r}: give one of them")
    return a or b


def _join(host: str, rel: PurePosixPath | str) -> str:
    rel = str(rel)
    return host if rel in ("", ".") else f"{host.rstrip('/')}/{rel}"


def _is_local(path: str) -> bool:
    return "://" not in path


def parse_mounts(mounts: str | Sequence[str] | None) -> list[tuple[str, str]]:
    """``"HOST:MOUNTED"`` items (a ``gs://`` host keeps its colon) -> pairs."""
    items = [mounts] if isinstance(mounts, str) else list(mounts or [])
    pairs: list[tuple[str, str]] = []
    for item in items:
        text = os.fspath(item) if isinstance(item, os.PathLike) else item
        if re.match(r"^[A-Za-z][A-Za-z0-9_]*=", str(text)):
            raise ConfigError(
                f"mount {text!r}: 2.x's named mounts (NAME=HOST) are not supported;"
                " use HOST:MOUNTED"
            )
        host, _, mounted = str(text).rpartition(":")
        if not host or not mounted.startswith("/") or mounted.startswith("//"):
            raise ConfigError(
                f"mount {text!r} is malformed; use HOST:MOUNTED, e.g."
                " /data:/mnt/disks/data or gs://bucket/data:/mnt/disks/data"
            )
        pairs.append((host, mounted.rstrip("/") or "/"))
    return _dedupe(pairs)


def _dedupe(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for host, mounted in pairs:
        same = [h for h, m in out if m == mounted]
        if same and same[0] != host:
            raise ConfigError(
                f"mounted path {mounted!r} has two hosts: {same[0]!r} and {host!r}"
            )
        if not same:
            out.append((host, mounted))
    redundant = set()
    for i, (host, mounted) in enumerate(out):
        for j, (ohost, omounted) in enumerate(out):
            inner = PurePosixPath(mounted)
            if i != j and inner.is_relative_to(omounted):
                rel = inner.relative_to(omounted)
                if _join(ohost, rel) == host:
                    redundant.add(i)
    return [pair for i, pair in enumerate(out) if i not in redundant]


def _holder(path: str, mounts: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
    """(host, mounted) of the mount whose mounted side holds ``path``."""
    for host, mounted in mounts:
        if PurePosixPath(path).is_relative_to(mounted):
            rel = PurePosixPath(path).relative_to(mounted)
            return _join(host, rel), path
    return None


def plan_mounts(
    mounts: str | Sequence[str] | None,
    *,
    workdir: str | None,
    workdir_name: str,
    root: str,
    mount_as_cwd: str | None = None,
    cwd: str | None = None,
    mounted_workdir: str | None = None,
) -> MountPlan:
    """The volumes and the workdir's two sides, by the rules above."""
    if mount_as_cwd and cwd:
        raise ConfigError(
            f"mount_as_cwd {mount_as_cwd!r} and cwd {cwd!r} both name the job's"
            " working directory; give one"
        )
    items = [mounts] if isinstance(mounts, str) else list(mounts or [])
    if mount_as_cwd:
        cwd = f"{root}/.cwd"
        items.insert(0, f"{mount_as_cwd}:{cwd}")
    pairs = parse_mounts(items)
    path = str(workdir or workdir_name)
    relative = _is_local(path) and not os.path.isabs(path)
    needs_mount = True
    if relative and cwd:
        holder = _holder(cwd, pairs)
        if holder is None:
            raise ConfigError(
                f"cwd {cwd!r} is in no mount, so the relative workdir {path!r}"
                " has no place; give an absolute workdir or a cwd inside a mount"
            )
        path, mounted_cwd = _join(holder[0], path), _join(holder[1], path)
        mounted_workdir = mounted_workdir or mounted_cwd
        needs_mount = _holder(mounted_workdir, pairs) is None
    elif relative:
        path = os.path.abspath(path)
    if needs_mount:
        mounted_workdir = mounted_workdir or f"{root}/{workdir_name}"
        pairs = _dedupe([*pairs, (path, mounted_workdir)])
    return MountPlan(tuple(pairs), path, str(mounted_workdir), cwd)
