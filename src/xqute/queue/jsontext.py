"""The JSON text a submit stores, written without importing ``json``.

A queued job's command (a string, or a list of strings: an argv) and its
environment (a dict of strings) are stored as JSON, and ``xqute submit`` sends
its request to a daemon as JSON (strings, integers, null). Importing ``json``
costs ``xqute submit`` ~1.5 ms of its ~30 (its decoder, scanner and encoder
modules and their regexes). So ``dumps`` writes strings with the C function
``json`` itself uses to quote them, and null, booleans, integers, lists and
str-keyed dicts of those in ``json.dumps``'s default layout; it hands any other
value (a float ...) to ``json.dumps``: the text is the same, byte for byte
(tests/unit/queue/test_queue_jsontext.py).
"""

from __future__ import annotations

try:
    from _json import encode_basestring_ascii as _quote
except ImportError:  # pragma: no cover (an interpreter without the C module)
    _quote = None

TYPE_CHECKING = False  # typing is not imported at run time (xqute submit)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["dumps"]


def dumps(value: object) -> str:
    """``json.dumps(value)``."""
    text = _dump(value) if _quote is not None else None
    if text is not None:
        return text
    import json

    return json.dumps(value)


def _dump(value: Any) -> str | None:
    """``json.dumps`` of strings, None, booleans, integers and the lists and
    str-keyed dicts of them (what a submit writes); None: anything else."""
    kind = type(value)
    if kind is str:
        return _quote(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind is list:
        items = [_dump(v) for v in value]
        return None if None in items else "[" + ", ".join(items) + "]"
    if kind is dict:
        pairs = []
        for k, v in value.items():
            text = _dump(v) if type(k) is str else None
            if text is None:
                return None
            pairs.append(f"{_quote(k)}: {text}")
        return "{" + ", ".join(pairs) + "}"
    return None
