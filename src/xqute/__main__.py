"""``python -m xqute``: the same as the ``xqute`` command."""

from .cli import console

console()
