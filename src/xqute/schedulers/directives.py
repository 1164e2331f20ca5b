"""Scheduler options as directive lines (``#SBATCH``, ``#$``), rendered safely.

Options become lines at the top of the wrapped script, and a directive line is
read by the batch tool's own tokenizer, not by a shell. The rules below come from
submitting hostile values to the real tools (docs/notes/clusters.md, section 5):

- Nothing in a directive line ever ran as shell code; the only way to inject code
  is a newline (the rest of the value becomes a script line). So every control
  character is rejected, everywhere.
- ``#SBATCH``: whitespace splits words and every word is parsed as an option, so
  a value is always double-quoted; inside quotes a backslash escapes the next
  character, so ``\\`` and ``"`` are escaped. ``#`` inside quotes is kept.
- ``#$`` (qsub): quote characters are dropped wherever they are, there is no
  escape, and ``#`` starts a comment even inside quotes. So values must be plain
  tokens (no whitespace, quotes, ``#``); paths may contain spaces inside ``"..."``
  but no ``" ' # , $ \\``, and get a leading ``:`` when they contain a ``:``
  (else qsub reads ``host:path``). Job names are mapped to ``[A-Za-z0-9_.-]``.

A value that cannot be made safe raises ``ConfigError`` naming the option.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..job import Job
    from ..resources import Resources

__all__ = [
    "RenderedDirectives",
    "as_list",
    "merge_option",
    "option_items",
    "render_sge",
    "render_slurm",
    "sanitize_sge_name",
    "sge_path",
    "slurm_option_name",
    "slurm_quote",
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SLURM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_SGE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_SGE_TOKEN_BAD = re.compile(r"[\s\"'#]")
_SGE_PATH_BAD = re.compile(r"[\"'#,$\\]")
_SGE_PATH_OPTIONS = frozenset({"o", "e", "i", "wd"})
_SGE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def option_items(name: str, value: Any) -> list[str | None]:
    """The values of one option: a list gives one item each, ``True`` a bare flag
    (``None``), ``False``/``None`` nothing; scalars become strings."""
    if value is None or value is False:
        return []
    if value is True:
        return [None]
    if isinstance(value, list | tuple):
        out: list[str | None] = []
        for item in value:
            if isinstance(item, list | tuple | dict | set):
                raise ConfigError(
                    f"option {name!r}: list items must be plain values, not {item!r}"
                )
            out.extend(option_items(name, item))
        return out
    if isinstance(value, str | int | float):
        return [str(value)]
    raise ConfigError(
        f"option {name!r} has a {type(value).__name__} value {value!r};"
        " give a string, a number, true/false or a list of them"
    )


def merge_option(options: dict[str, Any], name: str, value: Any, given: str) -> None:
    """Add an option given under another spelling too (``l`` and ``qsub_l``):
    lists are joined, two scalar values for one name are an error."""
    if name not in options:
        options[name] = value
        return
    old = options[name]
    if isinstance(old, list | tuple) or isinstance(value, list | tuple):
        options[name] = [*as_list(old), *as_list(value)]
        return
    if old == value:
        return
    raise ConfigError(
        f"option {name!r} is given twice ({old!r}, and {value!r} as {given!r});"
        " give it once, or as a list for several directives"
    )


def as_list(value: Any) -> list[Any]:
    """An option's value as a list: a list as is, ``None``/``False`` empty."""
    if value is None or value is False:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _check_control(name: str, value: str) -> None:
    if _CONTROL.search(value):
        raise ConfigError(
            f"option {name!r} value {value!r} contains a control character"
            " (newline, tab, NUL ...), which a directive line cannot carry safely"
        )


# ---------------------------------------------------------------------- Slurm
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
            _check_control(name, item)
            sep = " " if len(flag) == 1 else "="
            lines.append(f"#SBATCH {dash}{flag}{sep}{slurm_quote(item)}")
    return lines


# ---------------------------------------------------------------------- SGE
def sanitize_sge_name(name: str) -> str:
    """A job name the qmaster accepts: ``[A-Za-z0-9_.-]``, not starting with a
    digit (or a dot or dash), at most 200 characters."""
    clean = _SGE_NAME_CHARS.sub("_", name)[:200]
    if not clean or not clean[0].isalpha():
        clean = "x" + clean
    return clean


def sge_path(name: str, value: str) -> str:
    """A path for ``-o/-e/-wd``: quoted, ``:``-prefixed when it holds a colon."""
    _check_control(name, value)
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
    _check_control(name, value)
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


class RenderedDirectives:
    """A job's directive lines, rendered once per distinct resources (the only
    thing they depend on): ``lines(job)`` serves the script header and the
    array key of every job alike."""

    def __init__(
        self,
        job_directives: Callable[[Job], dict[str, Any]],
        render: Callable[[Mapping[str, Any]], list[str]],
    ) -> None:
        self._job_directives = job_directives
        self._render = render
        self._lines: dict[Resources, tuple[str, ...]] = {}

    def __call__(self, job: Job) -> tuple[str, ...]:
        lines = self._lines.get(job.resources)
        if lines is None:
            lines = tuple(self._render(self._job_directives(job)))
            self._lines[job.resources] = lines
        return lines
