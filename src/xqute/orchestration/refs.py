"""``#{...}`` references: finding them, classifying them, and substituting them
in one pass; and the checks on a task's output value. Pure functions.

Safety rules (the lesson of argo-workflows#12534, #6441):
- in an argv command a reference is replaced inside its one argv element; the
  result is never split or given to a shell;
- in shell code a value is substituted as ONE shell-quoted word
  (``shlex.quote``), and a reference written inside quotes (``'#{x}'``) is
  refused when the definition is created, since the quoting would be doubled;
- one pass: a substituted value is never scanned for ``#{`` again.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

from ..errors import RenderError

__all__ = [
    "DEFAULT_OUTPUT_MAX_BYTES",
    "check_output",
    "classify",
    "oversize",
    "quoted_references",
    "references",
    "render",
    "render_shell",
]

_TOKEN = re.compile(r"##\{|#\{([^{}]*)\}")
_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
_PARAM = re.compile(r"^params\.([A-Za-z_][A-Za-z0-9_]*)$")
_OUTPUT = re.compile(rf"^({_NAME})\.output$")
_FIXED = {
    "run.id": ("run", "id"),
    "run.name": ("run", "name"),
    "item.index": ("item", "index"),
    # given by the run's trigger (runs.context "refs"): a schedule's fire time
    "schedule.time": ("schedule", "time"),
}
DEFAULT_OUTPUT_MAX_BYTES = 64 * 1024

Resolver = Callable[[str], str]


def references(text: str) -> list[str]:
    """The expressions of the references in ``text``, in order (``##{`` is a
    literal, not a reference)."""
    return [m[1] for m in _TOKEN.finditer(text) if m[0] != "##{"]


def classify(expr: str) -> tuple[str, str]:
    """``("param", NAME)``, ``("output", TASK)``, ``("run", "id"|"name")``,
    ``("item", "index")`` or ``("schedule", "time")``; ``RenderError`` for
    anything else."""
    expr = expr.strip()
    if expr in _FIXED:
        return _FIXED[expr]
    match = _PARAM.match(expr)
    if match:
        return "param", match[1]
    match = _OUTPUT.match(expr)
    if match and match[1] not in ("params", "run", "item", "schedule"):
        return "output", match[1]
    raise RenderError(
        f"unknown reference #{{{expr}}}; use #{{params.NAME}}, #{{TASK.output}},"
        " #{run.id}, #{run.name}, #{item.index} or #{schedule.time}"
    )


def render(text: str, resolve: Resolver) -> str:
    """``text`` with each reference replaced by ``resolve(expr)``, in one pass."""
    return _TOKEN.sub(lambda m: "#{" if m[0] == "##{" else resolve(m[1]), text)


def render_shell(text: str, resolve: Resolver) -> str:
    """Shell code with each reference replaced by its value as ONE shell word."""
    return _TOKEN.sub(
        lambda m: "#{" if m[0] == "##{" else shlex.quote(resolve(m[1])), text
    )


def quoted_references(text: str) -> list[str]:
    """References written inside quotes in shell code (refused: the value is
    substituted already quoted, so ``'#{x}'`` would quote it twice)."""
    out = []
    quote = ""  # the open quote character, "" outside quotes
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "\\" and quote != "'":
            i += 2
            continue
        if quote and char == quote:
            quote = ""
        elif not quote and char in "'\"":
            quote = char
        elif text.startswith("##{", i):
            i += 3
            continue
        elif text.startswith("#{", i):
            match = _TOKEN.match(text, i)
            if match is not None:
                if quote:
                    out.append(match[1])
                i = match.end()
                continue
        i += 1
    return out


def oversize(size: int, limit: int) -> str:
    """Why an output of ``size`` bytes cannot be passed, and what to do."""
    return (
        f"output is {size:,} bytes > {limit:,}: write the data to a file and pass"
        " its path instead"
    )


def check_output(data: bytes, limit: int) -> tuple[str | None, str | None]:
    """(the value, None) or (None, why the producing task fails). One trailing
    newline is dropped (``echo x > $XQUTE_OUTPUT`` gives ``x``)."""
    if len(data) > limit:
        return None, oversize(len(data), limit)
    if b"\x00" in data:
        return None, (
            f"output holds a NUL byte at offset {data.index(0)}: it cannot be"
            " passed as an argument or environment value; pass a path instead"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, (
            f"output is not UTF-8 text (byte offset {exc.start}); pass a path instead"
        )
    return (text[:-1] if text.endswith("\n") else text), None
