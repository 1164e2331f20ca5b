"""A small option parser for the verbs that must answer fast (``submit``,
``queue``): Typer here imports pydantic on every call (~0.1 s), which scripts and
``watch xqute queue`` would pay thousands of times.

It understands ``--opt value``, ``--opt=value``, short options and flags, and
stops at ``--`` or at the first word that is not an option. Anything else
(``--help``, a bad integer, an unknown option) returns None, and the verb falls
back to its Typer command, which explains the problem the usual way.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (xqute submit)
if TYPE_CHECKING:
    from typing import Any

EXIT_FAILED = 1  # some job failed (``xqute run``), or the db could not be used
EXIT_USAGE = 2  # bad input: same as Typer/Click usage errors

#: option -> (parameter, kind): kind is "flag", "str", "int" or "list"
Spec = dict[str, tuple[str, str]]


def parse_options(
    argv: list[str], spec: Spec
) -> tuple[dict[str, Any], list[str]] | None:
    """(parameters, the words after the options), or None: ask Typer."""
    kwargs: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        opt, eq, inline = arg.partition("=")
        if opt not in spec:
            return None
        key, kind = spec[opt]
        if kind == "flag":
            if eq:
                return None
            kwargs[key] = True
            i += 1
            continue
        if eq:
            value: Any = inline
        elif i + 1 < len(argv):
            i += 1
            value = argv[i]
        else:
            return None
        if kind == "int":
            try:
                value = int(value)
            except ValueError:
                return None
        if kind == "list":
            kwargs.setdefault(key, []).append(value)
        else:
            kwargs[key] = value
        i += 1
    return kwargs, argv[i:]
