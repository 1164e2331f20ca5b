"""The shell code the ssh backend runs on a server, and the parsers of its output.

Pure functions: no I/O, so every builder and parser is unit-tested as text. Every
value from outside (paths, the nonce) is single-quoted with ``shlex.quote``; the
only other values are pids and start times that were parsed as digits.

A job is known by ``PID:START``: the pid of its detached leader (which is also its
process group and session id) and the leader's start time (field 22 of
``/proc/PID/stat``, clock ticks since boot). Status and kill compare the start
time, so a pid reused by another process after the job ended is never taken for
the job, and never killed. The code is POSIX sh (bash, dash and busybox sh were
checked), forks nothing per job and reads only ``/proc``: Linux servers only.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Jid",
    "LaunchSpec",
    "check_command",
    "kill_command",
    "launch_command",
    "parse_check",
    "parse_jid",
    "parse_launch",
    "parse_status",
    "status_command",
]

_q = shlex.quote

_LAUNCH_MARK = "xqute-launched"
_CHECK_MARK = "xqute-check"
_STATUS_RE = re.compile(r"^(\d+):(\d*) ([01])$")

# Read /proc/$p/stat into $1.. (state = $1, start time = ${20}); ${l##*) } strips
# "PID (comm) " even when comm holds spaces or parentheses. Zombies (Z) and dead
# (X) processes count as ended: `kill -0` succeeds on a zombie.
_ALIVE = (
    "p=${j%%:*}; t=${j#*:}; l=; { read -r l < /proc/$p/stat; } 2>/dev/null; "
    "set -- ${l##*) }; "
    '[ -n "$l" ] && [ -n "$t" ] && [ "$1" != Z ] && [ "$1" != X ] && [ "${20}" = "$t" ]'
)


@dataclass(frozen=True, slots=True)
class Jid:
    """A job's id on the ssh backend: ``server:pid:start``."""

    server: str
    pid: int
    start: str  # "" when the job ended before its start time could be read

    def __str__(self) -> str:
        return f"{self.server}:{self.pid}:{self.start}"

    @property
    def pair(self) -> str:
        """``PID:START``, what the remote code is given."""
        return f"{self.pid}:{self.start}"


def parse_jid(text: str) -> Jid | None:
    """``h1:123:456`` -> Jid; None for anything else (a jid of another backend)."""
    parts = text.strip().rsplit(":", 2)
    if len(parts) != 3:
        return None
    server, pid, start = parts
    if not server or not pid.isdigit() or not (start == "" or start.isdigit()):
        return None
    return Jid(server, int(pid), start)


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """One job to launch: ``key`` tells its result line apart in a batch."""

    key: str
    script: str
    metadir: str
    nonce_file: str
    nonce: str


# L KEY METADIR NONCE_FILE NONCE SCRIPT: start one job, print one result line.
# The leader is a small bash that runs the wrapper and then SIGKILLs its own
# process group, so what a job left in the background ends with it (as on the
# local backend). It traps TERM/INT only to outlive a group kill until the wrapper
# has recorded its rc (a trap, unlike an ignored signal, is not inherited).
# `setsid` does not fork (a background job of a non-interactive shell is no group
# leader), so $! is the leader; its stdout/stderr must not be ssh's, or ssh would
# wait for the job.
_LAUNCH_FN = (
    "L() { k=$1; "
    '[ -d "$2" ] || { echo "xqute-unseen $k"; return; }; '
    'n=; { read -r n < "$3"; } 2>/dev/null; '
    '[ "$n" = "$4" ] || { echo "xqute-stale $k"; return; }; '
    'setsid nohup bash -c \'trap : TERM INT; bash "$0"; kill -KILL 0\' "$5" '
    ">/dev/null 2>&1 </dev/null & "
    "p=$!; l=; { read -r l < /proc/$p/stat; } 2>/dev/null; set -- ${l##*) }; "
    f'echo "{_LAUNCH_MARK} $k $p:${{20}}"; }}'
)


def launch_command(specs: Sequence[LaunchSpec]) -> str:
    """Start every job of ``specs`` detached, in a session of its own; one call.

    Prints ``xqute-launched KEY PID:START`` per job started, ``xqute-unseen KEY``
    when its folder is not visible on the server, ``xqute-stale KEY`` when its
    nonce file no longer holds its nonce: a launch that reaches a server after
    the driver gave up on it (a server that hung, then woke up) must not run the
    job a second time. Always exits 0.
    """
    lines = [_LAUNCH_FN]
    for spec in specs:
        if not spec.key or not spec.key.replace("-", "").isalnum():
            raise ValueError(f"launch key {spec.key!r} must be alphanumeric")
        args = (spec.metadir, spec.nonce_file, spec.nonce, spec.script)
        lines.append(f"L {spec.key} {' '.join(_q(a) for a in args)}")
    return "; ".join(lines) + "; exit 0"


def parse_launch(stdout: str) -> dict[str, tuple[int, str] | str]:
    """``{key: (pid, start)}`` for the jobs started, ``{key: "unseen" | "stale"}``
    for the others. Other lines (a chatty ``.bashrc``) are skipped."""
    out: dict[str, tuple[int, str] | str] = {}
    for line in stdout.splitlines():
        mark, _, rest = line.strip().partition(" ")
        key, _, pair = rest.partition(" ")
        if mark == _LAUNCH_MARK:
            pid, sep, start = pair.partition(":")
            if pid.isdigit() and sep and (start == "" or start.isdigit()):
                out[key] = (int(pid), start)
        elif mark in ("xqute-unseen", "xqute-stale") and key and not pair:
            out[key] = mark.removeprefix("xqute-")
    return out


def status_command(pairs: Sequence[str]) -> str:
    """One line ``PID:START 1|0`` (alive or not) per pair, in one call."""
    if not pairs:
        return "true"
    _check_pairs(pairs)
    return (
        f"for j in {' '.join(pairs)}; do if {_ALIVE}; "
        'then echo "$j 1"; else echo "$j 0"; fi; done; exit 0'
    )


def parse_status(stdout: str) -> dict[str, bool]:
    """``{PID:START: alive}``; lines that do not match are ignored."""
    out = {}
    for line in stdout.splitlines():
        m = _STATUS_RE.match(line.strip())
        if m:
            out[f"{m.group(1)}:{m.group(2)}"] = m.group(3) == "1"
    return out


def kill_command(pairs: Sequence[str], grace_s: float | None) -> str:
    """SIGTERM the process group of each live job, then SIGKILL after ``grace_s``;
    with ``grace_s`` None, SIGKILL at once (no trap runs, nothing is written).

    The late SIGKILL comes from a small detached sh on the server, so one call is
    all the driver makes, and the escalation happens even if the driver exits
    first. Groups whose leader is gone or reused are left alone. Prints ``killed
    PAIR`` per group signalled. Always exits 0.
    """
    if not pairs:
        return "true"
    _check_pairs(pairs)
    signal = "KILL" if grace_s is None else "TERM"
    text = (
        f"k=; for j in {' '.join(pairs)}; do if {_ALIVE}; "
        f'then kill -{signal} -$p 2>/dev/null && k="$k $j" && echo "killed $j"; fi;'
        " done; "
    )
    if grace_s is None:
        return text + "exit 0"
    escalate = (
        f'sleep {float(grace_s):g}; for j in "$@"; do if {_ALIVE}; '
        "then kill -KILL -$p 2>/dev/null; fi; done"
    )
    # `if`, not `&&`: a backgrounded && list would be a subshell holding ssh's
    # stdout, and ssh would wait for the escalation
    return text + (
        f'if [ -n "$k" ]; then setsid nohup sh -c {_q(escalate)} sh $k '
        ">/dev/null 2>&1 </dev/null & fi; exit 0"
    )


def check_command(marker: str) -> str:
    """What start() asks each server: does it see the workdir (``marker``, a file
    the driver just wrote there), and has it the tools the backend runs."""
    checks = {
        "workdir": f"[ -f {_q(marker)} ]",
        "bash": "command -v bash >/dev/null 2>&1",
        "setsid": "command -v setsid >/dev/null 2>&1",
        "nohup": "command -v nohup >/dev/null 2>&1",
        "proc": "[ -r /proc/self/stat ]",
    }
    return (
        "; ".join(
            f"if {test}; then echo '{_CHECK_MARK} {name}=ok'; "
            f"else echo '{_CHECK_MARK} {name}=missing'; fi"
            for name, test in checks.items()
        )
        + "; exit 0"
    )


def parse_check(stdout: str) -> dict[str, bool]:
    """``{check: passed}`` from the output of ``check_command``."""
    out = {}
    for line in stdout.splitlines():
        mark, _, item = line.strip().partition(" ")
        name, sep, value = item.partition("=")
        if mark == _CHECK_MARK and sep:
            out[name] = value == "ok"
    return out


def _check_pairs(pairs: Sequence[str]) -> None:
    for pair in pairs:
        pid, sep, start = pair.partition(":")
        if not (pid.isdigit() and sep and (start == "" or start.isdigit())):
            raise ValueError(f"{pair!r} is not PID:START")
