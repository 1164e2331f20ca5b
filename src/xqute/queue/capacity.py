"""What a pool may hand out: cpus, memory, GPU indexes (detected, or given).

Defaults for the local backend: the cpus this process may run on, 90% of the
RAM (the rest is the system's), the GPUs ``nvidia-smi -L`` lists (none when it
is missing). Each can be given instead, which is also how tests fake GPUs
(``gpu_ids=[0, 1]``). For a cluster backend the pool does not own the machines:
cpus, memory and GPUs are unlimited unless given, and ``max_workers`` caps how
many jobs it hands to the cluster at once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from .. import checks
from ..errors import ConfigError
from ..units import parse_mem_mb
from .policy import Capacity
from .schema import UNLIMITED

__all__ = [
    "UNLIMITED",
    "build_capacity",
    "check_capacity_args",
    "detect_cpus",
    "detect_gpu_ids",
]

MEM_FRACTION = 0.9


def detect_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def detect_mem_mb() -> int:
    import psutil

    return int(psutil.virtual_memory().total * MEM_FRACTION / (1024 * 1024))


def detect_gpu_ids() -> tuple[int, ...]:
    """Indexes of the NVIDIA GPUs ``nvidia-smi -L`` lists; () without it."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return ()
    try:
        out = subprocess.run(
            [exe, "-L"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ()
    if out.returncode != 0:
        return ()
    count = sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
    return tuple(range(count))


def parse_gpu_ids(value: Any) -> tuple[int, ...]:
    """``"0,1"``, ``[0, 1]``, ``2`` (meaning indexes 0 and 1); ``""``, ``"none"``,
    ``[]``: no GPU."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return ()
    if isinstance(value, bool):
        raise ConfigError(f"gpu_ids {value!r} must be a list of GPU indexes")
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"gpu_ids {value!r}: a GPU count must be >= 0")
        return tuple(range(value))
    if isinstance(value, str):
        items: Sequence[Any] = [v for v in value.replace(" ", "").split(",") if v]
    else:
        items = list(value)
    try:
        ids = tuple(int(v) for v in items)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"gpu_ids {value!r} must be GPU indexes, like [0, 1] or '0,1'"
        ) from exc
    if any(i < 0 for i in ids) or len(set(ids)) != len(ids):
        raise ConfigError(f"gpu_ids {value!r} must be distinct indexes >= 0")
    return ids


def check_capacity_args(
    *,
    local: bool,
    cpus: int | None = None,
    memory: str | int | None = None,
    gpu_ids: Any = None,
    pin_cpus: bool = False,
) -> None:
    """Validate what ``build_capacity`` will be given (no detection, no I/O)."""
    if cpus is not None:
        checks.positive_int("cpus", cpus)
    if memory not in (None, ""):
        parse_mem_mb(memory, "memory")
    parse_gpu_ids(gpu_ids)
    if pin_cpus and (not local or not hasattr(os, "sched_setaffinity")):
        raise ConfigError(
            "pin_cpus needs the local backend on Linux"
            f" (sched_setaffinity; this is {sys.platform})"
        )


def build_capacity(
    *,
    local: bool,
    max_workers: int,
    cpus: int | None = None,
    memory: str | int | None = None,
    gpu_ids: Any = None,
    pin_cpus: bool = False,
) -> Capacity:
    """The pool's capacity from what was given and what is detected (I/O)."""
    check_capacity_args(
        local=local, cpus=cpus, memory=memory, gpu_ids=gpu_ids, pin_cpus=pin_cpus
    )
    mem_mb = parse_mem_mb(memory, "memory") if memory not in (None, "") else None
    gpus = parse_gpu_ids(gpu_ids) if gpu_ids is not None else None
    cpu_ids: tuple[int, ...] = ()
    if pin_cpus:
        allowed = sorted(os.sched_getaffinity(0))
        cpu_ids = tuple(allowed[: cpus or len(allowed)])
        if cpus is not None and cpus > len(allowed):
            raise ConfigError(
                f"cpus {cpus} > the {len(allowed)} cpus this process may pin to"
            )
    if local:
        return Capacity(
            cpus=cpus or detect_cpus(),
            mem_mb=mem_mb if mem_mb is not None else detect_mem_mb(),
            gpu_ids=gpus if gpus is not None else detect_gpu_ids(),
            max_workers=max_workers,
            cpu_ids=cpu_ids,
        )
    return Capacity(
        cpus=cpus or UNLIMITED,
        mem_mb=mem_mb if mem_mb is not None else UNLIMITED,
        gpus=len(gpus) if gpus is not None else UNLIMITED,  # counted, not indexed
        max_workers=max_workers,
    )
