"""Scheduler options as directive lines: what every batch backend shares.

Options become lines at the top of the wrapped script (``#SBATCH``, ``#$``), and
a directive line is read by the batch tool's own tokenizer, not by a shell.
Nothing in a directive line ever ran as shell code; the only way to inject code
is a newline (the rest of the value becomes a script line). So every control
character is rejected, everywhere (``check_control``). How each tool quotes is
its backend's (``slurm/directives.py``, ``sge/directives.py``): the rules come
from submitting hostile values to the real tools (docs/notes/clusters.md,
section 5). A value that cannot be made safe raises ``ConfigError`` naming the
option.

Here: an option's values (``option_items``: a list gives one directive each,
``True`` a bare flag), two spellings of one option merged (``merge_option``),
and a job's directive lines rendered once per distinct resources
(``RenderedDirectives``).
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
    "check_control",
    "merge_option",
    "option_items",
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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


def check_control(name: str, value: str) -> None:
    """Reject a value a directive line cannot carry: a control character."""
    if _CONTROL.search(value):
        raise ConfigError(
            f"option {name!r} value {value!r} contains a control character"
            " (newline, tab, NUL ...), which a directive line cannot carry safely"
        )


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
