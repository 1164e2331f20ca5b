"""Running a backend's command-line tools (sbatch, qstat, docker, gcloud, ssh).

One place decides how a tool runs: no shell, stdin closed unless given, a time
limit after which the tool is killed, output decoded leniently, and a failure
raised as ``CommandFailed`` carrying argv, rc, stdout and stderr, so that the
caller can tell a transient failure (controller unreachable) from a real one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ...errors import CommandFailed

__all__ = ["CommandResult", "chunks", "run_command"]


@dataclass(frozen=True, slots=True)
class CommandResult:
    argv: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str


async def run_command(
    argv: Sequence[str],
    *,
    timeout_s: float | None = 60.0,
    check: bool = True,
    input_text: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> CommandResult:
    """Run ``argv``; raise ``CommandFailed`` on a non-zero rc when ``check``.

    A tool that outlives ``timeout_s`` is killed (with its process group) and
    reported as ``CommandFailed`` with rc None. A tool that cannot be started
    (not found, not executable) is ``CommandFailed`` with rc 127/126.
    """
    argv = tuple(str(a) for a in argv)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE
            if input_text is not None
            else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **env} if env else None,
            cwd=cwd,
            start_new_session=True,  # a timeout kill reaches its children too
        )
    except FileNotFoundError as exc:
        raise CommandFailed(
            argv, 127, "", f"{argv[0]}: not found ({exc.strerror})"
        ) from exc
    except PermissionError as exc:
        raise CommandFailed(
            argv, 126, "", f"{argv[0]}: cannot execute ({exc.strerror})"
        ) from exc
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(input_text.encode() if input_text is not None else None),
            timeout_s,
        )
    except (TimeoutError, asyncio.CancelledError) as exc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        raise CommandFailed(argv, None, "", f"timed out after {timeout_s:g}s") from exc
    result = CommandResult(
        argv,
        proc.returncode or 0,
        out.decode(errors="replace"),
        err.decode(errors="replace"),
    )
    if check and result.rc != 0:
        raise CommandFailed(argv, result.rc, result.stdout, result.stderr)
    return result


def chunks(items: Sequence[str], size: int) -> list[list[str]]:
    """``items`` in lists of at most ``size`` (command lines have a length limit)."""
    items = list(items)
    return [items[i : i + size] for i in range(0, len(items), size)]
