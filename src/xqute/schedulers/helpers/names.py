"""Job names a backend derives for itself: valid where a container engine or a
cloud API wants them (lower case, ``[a-z0-9-]``, a letter first, under 64
characters), unique per run and trial. The container and gbatch backends both
name their jobs this way."""

from __future__ import annotations

import re

__all__ = ["container_name"]

_NAME_BAD = re.compile(r"[^a-z0-9-]+")


def container_name(prefix: str, run_id: str, index: int, trial: int) -> str:
    """``<prefix>-<run>-<index>-<trial>``: valid in both engines (lower case,
    ``[a-z0-9-]``, a letter first), unique per run and trial, under 64 chars."""
    clean = _NAME_BAD.sub("-", prefix.lower()).strip("-") or "xqute"
    if not clean[0].isalpha():
        clean = "x" + clean
    suffix = f"-{run_id}-{index}-{trial}"
    return clean[: max(1, 63 - len(suffix))].rstrip("-") + suffix
