"""``python -m xqute``: the same as the ``xqute`` command."""

from .cli import main

main()
