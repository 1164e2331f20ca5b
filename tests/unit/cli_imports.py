"""What one ``xqute`` command imports, beyond a floor of modules: the fast
paths' tests pin these sets (each module costs every call ~0.1-0.3 ms)."""

from __future__ import annotations

import ast
import subprocess
import sys


def imported_by(argv: list[str], floor: str) -> set[str]:
    """The modules ``xqute *argv`` imports beyond ``import {floor}``, run in a
    fresh interpreter (the command must succeed)."""
    code = (
        "import sys\n"
        f"import {floor}\n"
        "floor = set(sys.modules)\n"
        f"sys.argv = ['xqute', *{argv!r}]\n"
        "from xqute.cli import main\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code\n"
        "print(repr(sorted(set(sys.modules) - floor)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return set(ast.literal_eval(out.splitlines()[-1]))
