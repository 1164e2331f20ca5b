"""The JSON text a submit stores, written without importing ``json``.

A queued job's command (a string, or a list of strings: an argv) and its
environment (a dict of strings) are stored as JSON. Importing ``json`` costs
``xqute submit`` ~1.5 ms of its ~30 (its decoder, scanner and encoder modules
and their regexes), and a submit only ever writes strings. So ``dumps`` writes
those with the C function ``json`` itself uses to quote a string, in
``json.dumps``'s default layout, and hands any other value to ``json.dumps``:
the text is the same, byte for byte (tests/unit/queue/test_queue_jsontext.py).
"""

from __future__ import annotations

try:
    from _json import encode_basestring_ascii as _quote
except ImportError:  # pragma: no cover (an interpreter without the C module)
    _quote = None

__all__ = ["dumps"]


def dumps(value: object) -> str:
    """``json.dumps(value)``."""
    if _quote is not None:
        if type(value) is str:
            return _quote(value)
        if type(value) is list and all(type(v) is str for v in value):
            return "[" + ", ".join(map(_quote, value)) + "]"
        if type(value) is dict and all(
            type(k) is str and type(v) is str for k, v in value.items()
        ):
            items = (f"{_quote(k)}: {_quote(v)}" for k, v in value.items())
            return "{" + ", ".join(items) + "}"
    import json

    return json.dumps(value)
