"""Reader of the captured scheduler output in tests/data (layout: its README)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from xqute.schedulers.helpers.command import CommandResult

DATA = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class Capture:
    command: str
    rc: int
    stdout: str
    stderr: str
    notes: list[str]

    @property
    def result(self) -> CommandResult:
        return CommandResult(
            tuple(shlex.split(self.command)), self.rc, self.stdout, self.stderr
        )

    def option(self, flag: str) -> str:
        """The value after ``flag`` in the captured command line."""
        argv = shlex.split(self.command)
        return argv[argv.index(flag) + 1]


def read_capture(name: str) -> Capture:
    """``read_capture("slurm/squeue_all_states")``."""
    text = (DATA / f"{name}.txt").read_text(encoding="utf-8")
    head, _, rest = text.partition("# stdout:\n")
    stdout, _, stderr = rest.partition("# stderr:\n")
    meta: dict[str, str] = {}
    notes = []
    for line in head.splitlines():
        key, _, value = line[2:].partition(": ")
        if key == "note":
            notes.append(value)
        else:
            meta[key] = value
    return Capture(meta["command"], int(meta["rc"]), stdout, stderr, notes)
