"""Grid Engine's options as ``#$`` lines, rendered safely.

``#$`` (qsub): quote characters are dropped wherever they are, there is no
escape, and ``#`` starts a comment even inside quotes. So values must be plain
tokens (no whitespace, quotes, ``#``); paths may contain spaces inside ``"..."``
but no ``" ' # , $ \\``, and get a leading ``:`` when they contain a ``:``
(else qsub reads ``host:path``). Job names are mapped to ``[A-Za-z0-9_.-]``.
Control characters are rejected (``check_control``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ...errors import ConfigError
from ..directives import check_control, option_items

__all__ = ["render_sge", "sanitize_sge_name", "sge_path"]

_SGE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_SGE_TOKEN_BAD = re.compile(r"[\s\"'#]")
_SGE_PATH_BAD = re.compile(r"[\"'#,$\\]")
_SGE_PATH_OPTIONS = frozenset({"o", "e", "i", "wd"})
_SGE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def sanitize_sge_name(name: str) -> str:
    """A job name the qmaster accepts: ``[A-Za-z0-9_.-]``, not starting with a
    digit (or a dot or dash), at most 200 characters."""
    clean = _SGE_NAME_CHARS.sub("_", name)[:200]
    if not clean or not clean[0].isalpha():
        clean = "x" + clean
    return clean


def sge_path(name: str, value: str) -> str:
    """A path for ``-o/-e/-wd``: quoted, ``:``-prefixed when it holds a colon."""
    check_control(name, value)
    bad = _SGE_PATH_BAD.search(value)
    if bad or not value:
        raise ConfigError(
            f"option {name!r} path {value!r} cannot be passed to qsub safely"
            f" (it contains {bad.group()!r})"
            if bad
            else f"option {name!r} path is empty"
        )
    return '"' + (":" + value if ":" in value else value) + '"'


def _sge_token(name: str, value: str) -> str:
    check_control(name, value)
    bad = _SGE_TOKEN_BAD.search(value)
    if bad or not value:
        raise ConfigError(
            f"option {name!r} value {value!r} cannot be passed to qsub safely:"
            " values must be single words without quotes or '#'"
        )
    if value.startswith("-") and not _NUMBER.match(value):
        raise ConfigError(
            f"option {name!r} value {value!r} starts with '-' (qsub would read it"
            " as an option)"
        )
    return value


def render_sge(options: Mapping[str, Any]) -> list[str]:
    """``#$`` lines; names are qsub's flags (``q``, ``l``, ``pe``, ``cwd``)."""
    lines = []
    for name, value in options.items():
        if not _SGE_NAME.match(name):
            raise ConfigError(
                f"SGE option name {name!r} is invalid; use letters, digits and _"
            )
        for item in option_items(name, value):
            if item is None:
                lines.append(f"#$ -{name}")
            elif name == "N":
                lines.append(f"#$ -N {sanitize_sge_name(item)}")
            elif name in _SGE_PATH_OPTIONS:
                lines.append(f"#$ -{name} {sge_path(name, item)}")
            elif name == "pe":
                # "-pe smp 4": two words, each a token
                words = item.split(" ")
                if len(words) != 2:
                    raise ConfigError(
                        f"option 'pe' value {item!r} must be '<pe name> <slots>'"
                    )
                lines.append(
                    f"#$ -pe {_sge_token(name, words[0])} {_sge_token(name, words[1])}"
                )
            else:
                lines.append(f"#$ -{name} {_sge_token(name, item)}")
    return lines
