"""Slurm's options as ``#SBATCH`` lines, rendered safely.

``#SBATCH``: whitespace splits words and every word is parsed as an option, so
a value is always double-quoted; inside quotes a backslash escapes the next
character, so ``\\`` and ``"`` are escaped. ``#`` inside quotes is kept. Option
names are sbatch's flags (``partition``, ``c``; ``cpus_per_task`` is
``cpus-per-task``). Control characters are rejected (``check_control``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ...errors import ConfigError
from ..directives import check_control, option_items

__all__ = ["render_slurm", "slurm_option_name", "slurm_quote"]

_SLURM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")


def slurm_option_name(name: str) -> str:
    """``cpus_per_task`` -> ``cpus-per-task``; reject what is not an option name."""
    flag = name.replace("_", "-")
    if not _SLURM_NAME.match(flag):
        raise ConfigError(
            f"Slurm option name {name!r} is invalid; use letters, digits and dashes"
        )
    return flag


def slurm_quote(value: str) -> str:
    """Double-quote a value for sbatch's directive tokenizer."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_slurm(options: Mapping[str, Any]) -> list[str]:
    """``#SBATCH`` lines; names are sbatch's flags (``partition``, ``c``)."""
    lines = []
    for name, value in options.items():
        flag = slurm_option_name(name)
        dash = "-" if len(flag) == 1 else "--"
        for item in option_items(name, value):
            if item is None:
                lines.append(f"#SBATCH {dash}{flag}")
                continue
            check_control(name, item)
            sep = " " if len(flag) == 1 else "="
            lines.append(f"#SBATCH {dash}{flag}{sep}{slurm_quote(item)}")
    return lines
