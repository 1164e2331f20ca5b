"""Argument templates for ``xqute run``, as GNU parallel users write them.

    xqute run 'gzip -9 {}' ::: *.txt            # one job per value
    xqute run 'convert {} {.}.png' ::: a.jpg b.jpg
    xqute run 'cp {1} {2}/' ::: a b ::: d1 d2   # every combination (a d1, a d2 ..)
    xqute run -a names.txt 'echo hello {}'      # values from a file ('-': stdin)

The command is shell code; each value is put in as ONE shell word (quoted), so
a value with spaces, quotes, ``$`` or ``;`` reaches the program as it is, never
re-split or run. A command with no replacement string gets the values
appended. Replacement strings:

    {}    the value (several sources: the values, space-separated)
    {.}   without its extension        {/}   its file name (no folders)
    {//}  its folder                   {/.}  its file name without extension
    {#}   the job's number (1, 2, ...) {n} {n.} {n/} {n//} {n/.}  source n only

Everything here is pure: the command line is split (``split_sources``) before
the option parser sees it, so a value that starts with ``-`` is a value.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
from collections.abc import Iterable, Iterator, Sequence

from ..errors import ConfigError

__all__ = ["SEPARATORS", "expand", "render", "split_sources"]

#: ``:::`` values follow; ``::::`` files whose lines are the values follow
SEPARATORS = (":::", "::::")
_FIELD = re.compile(r"\{(#|(\d*)(\.|//|/\.|/)?)\}")
_EXT = re.compile(r"\.[^/.]*$")


def split_sources(argv: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """(argv before the first separator, the sources after it).

    A source is ("values", [...]) for ``:::``, or ("files", [...]) for
    ``::::``; each is returned as a list whose first item is the kind.
    """
    starts = [i for i, word in enumerate(argv) if word in SEPARATORS]
    if not starts:
        return list(argv), []
    head, rest = list(argv[: starts[0]]), argv[starts[0] :]
    sources: list[list[str]] = []
    for word in rest:
        if word in SEPARATORS:
            sources.append(["values" if word == ":::" else "files"])
        else:
            sources[-1].append(word)
    for source in sources:
        if len(source) == 1:
            sep = ":::" if source[0] == "values" else "::::"
            raise ConfigError(f"{sep} must be followed by at least one value")
    return head, sources


def _field(value: str, modifier: str | None) -> str:
    if not modifier:
        return value
    if modifier == ".":
        return _strip_ext(value)
    if modifier == "/":
        return os.path.basename(value)
    if modifier == "//":
        return os.path.dirname(value) or "."
    return _strip_ext(os.path.basename(value))  # "/."


def _strip_ext(value: str) -> str:
    """GNU parallel's rule: the last ``.xxx`` of the name goes."""
    return _EXT.sub("", value)


def render(
    template: str,
    values: Sequence[str],
    number: int,
    *,
    quote: bool = True,
    append: bool = True,
) -> str:
    """The shell command of one job: ``template`` with its replacement strings
    filled, each value as one shell word; ``number`` is ``{#}``. (``quote``
    False: for showing, as a tag; ``append`` False: no values appended when
    the template has no replacement string.)"""
    used = False
    q = shlex.quote if quote else str

    def fill(match: re.Match[str]) -> str:
        nonlocal used
        used = True
        if match.group(1) == "#":
            return str(number)
        index, modifier = match.group(2), match.group(3)
        if index:
            n = int(index)
            if not 1 <= n <= len(values):
                raise ConfigError(
                    f"{match.group(0)} in {template!r}: there are only"
                    f" {len(values)} input source(s)"
                )
            return q(_field(values[n - 1], modifier))
        return " ".join(q(_field(v, modifier)) for v in values)

    command = _FIELD.sub(fill, template)
    if not used and append:
        command = " ".join([template, *(q(v) for v in values)])
    return command


def expand(
    template: str, sources: Sequence[Iterable[str]], first_number: int = 1
) -> Iterator[tuple[int, list[str], str]]:
    """(number, values, command) of every job: each combination of the
    sources' values, the last source varying fastest, numbered from
    ``first_number``."""
    if not template.strip():
        raise ConfigError(
            "the command template is empty; e.g. xqute run 'gzip {}' ::: *.txt"
        )
    # one source is read lazily (a stream: jobs start as its lines arrive)
    combos = (
        ([v] for v in sources[0])
        if len(sources) == 1
        else (list(c) for c in itertools.product(*sources))
    )
    for number, values in enumerate(combos, first_number):
        yield number, values, render(template, values, number)
