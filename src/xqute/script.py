"""The wrapped script: one generated bash script runs every job on every backend.

It records what happened in the job's folder (``job.status``, ``job.rc``,
``job.info``) through traps, so that a driver on another machine learns a job's fate
from files alone; it applies the per-job timeout; it runs the plugins'
``on_jobcmd_*`` snippets. Everything that comes from a user (arguments, env values,
paths) is single-quoted with ``shlex.quote``; a string command is handed to ``eval``
as one quoted word, so a syntax error in it fails the job, not the wrapper.

Bash runs a trap only between commands, so when the wrapper must react while the
command runs (a timeout watchdog's USR1; a kill that reaches only the wrapper
because it does not lead its own process group), the command runs in the
background and the wrapper ``wait``s for it. Otherwise (a local job without a
timeout) a kill goes to the whole process group, the command gets it directly,
and the command runs in the foreground: a builtin such as ``true`` then costs no
fork at all. A string command runs in a subshell either way, so that shell code
cannot touch the wrapper's traps and variables.

The kill rule (Slurm's KillWait): the job gets ONE SIGTERM, then ``kill_grace_s``
seconds, then SIGKILL for what is left. A signal that reaches a wrapper leading
its process group reached the whole group (a driver's ``killpg``, ``scancel``),
so the wrapper does not send it again; one that reaches the wrapper alone is
forwarded to the command; a timeout sends TERM to the group (or the command).
Then the wrapper waits, up to the grace, for every other process of its group
(a shell command's subshell dies of TERM at once, while the programs it started
may still be saving their work), records the outcome, and SIGKILLs what is left.

Exit codes written to ``job.rc``: the command's own, 124 for a timeout, 128+N when
killed by signal N (143 TERM, 130 INT, 129 HUP; any other signal that ends a
process and that bash catches, with the reason "killed by SIGNAME"). Needs bash
>= 3.2; bash 5 gives sub-second start/end times. The common path forks nothing
but the command itself (times come from builtins, never from ``$(...)``): the
wrapper's cost per job is bash's start-up and a few small file writes.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["render_wrapped_script"]

_q = shlex.quote

_PRELUDE = """\
_xq_dir=$XQUTE_JOB_METADIR
exec >>"$_xq_dir/job.stdout" 2>>"$_xq_dir/job.stderr" </dev/null
_xq_pid= _xq_wd= _xq_rc=
if [ -n "${EPOCHREALTIME:-}" ]; then _xq_now() { _xq_t=$EPOCHREALTIME; }
elif printf -v _xq_t '%(%s)T' -1 2>/dev/null; then
    _xq_now() { printf -v _xq_t '%(%s)T' -1; }
else _xq_now() { _xq_t=$(date +%s); }; fi
{current_fn}
_xq_record() {
    _xq_current || return 0
    {record_end}
    printf '%s\\n' "$1" >"$_xq_dir/job.rc"
    if [ "$1" = 0 ]; then echo 4; else echo 5; fi >"$_xq_dir/job.status"
}
_xq_exit() {
    local rc=$?
    trap '' {caught}
    trap - EXIT
    [ -n "$_xq_rc" ] && rc=$_xq_rc
    [ -n "$_xq_wd" ] && kill "$_xq_wd" 2>/dev/null
    _xq_record "$rc"
    exit "$rc"
}
_xq_stop() {
    trap '' {caught}
    _xq_rc=$1
    printf 'reason=%s\\n' "$2" >>"$_xq_dir/job.info"
    [ "$3" = term ] && kill -TERM {term_target} 2>/dev/null
    local i=0
    while [ $i -lt {grace_ticks} ] && _xq_alive; do sleep 0.1; i=$((i + 1)); done
    if _xq_alive; then
        trap - EXIT
        _xq_record "$_xq_rc"
        kill -KILL {term_target} 2>/dev/null
    fi
    exit "$_xq_rc"
}
{alive_fn}
trap _xq_exit EXIT
trap '_xq_stop 143 killed{forward}' TERM
trap '_xq_stop 130 interrupted{forward}' INT
trap '_xq_stop 129 hangup{forward}' HUP
trap '_xq_stop 124 timeout term' USR1
_xq_signal() {
    local n=
    n=$(kill -l "$1" 2>/dev/null) || n=0
    _xq_stop $((128 + n)) "killed by SIG$1"{forward}
}
for _xq_g in {fatal}; do trap "_xq_signal $_xq_g" "$_xq_g"; done
"""

# Every other signal whose default is to end the process and that bash catches
# to run the EXIT trap first (with $? = 0: a killed job would be "succeeded"):
# the wrapper records 128+N (its number where the job runs) and the reason
# "killed by SIGNAME" (SGE's s_cpu/s_fsize limits send XCPU/XFSZ, its -notify
# USR2, HTCondor's kill_sig any signal). SIGQUIT is ignored by bash; SIGKILL,
# and signals bash does not catch (PROF, IO, PWR ...), leave no rc: the backend
# tells (128+N from the cluster's accounting).
_FATAL = "ILL TRAP ABRT BUS FPE SEGV USR2 PIPE ALRM XCPU XFSZ VTALRM SYS"
_CAUGHT = f"TERM INT HUP USR1 {_FATAL}"

# Whether the job is still running, while the wrapper gives it its grace. When
# the wrapper leads its process group, a kill reached the whole group, and what
# must end is the group: a shell command's subshell dies of TERM at once while
# the programs it started may still be saving their work. So the test is "any
# process of the group but this wrapper (and zombies)", read from /proc without
# a fork (``${l##*) }`` strips "PID (comm) " whatever comm holds); where there is
# no /proc, the command's own pid.
_ALIVE_GROUP = """\
_xq_alive() {
    if [ ! -r /proc/$$/stat ]; then
        [ -n "$_xq_pid" ] && kill -0 "$_xq_pid" 2>/dev/null; return
    fi
    local f l
    for f in /proc/[0-9]*/stat; do
        [ "$f" = /proc/$$/stat ] && continue
        l=; { read -r l <"$f"; } 2>/dev/null
        set -- ${l##*) }
        [ "$3" = $$ ] && [ "$1" != Z ] && [ "$1" != X ] && return 0
    done
    return 1
}"""
_ALIVE_PID = """\
_xq_alive() { [ -n "$_xq_pid" ] && kill -0 "$_xq_pid" 2>/dev/null; }"""

_START = """\
_xq_current || exit 0
{record_start}
echo 3 >"$_xq_dir/job.status"
"""
_RECORD_START = (
    "_xq_now\n"
    'printf \'start=%s\\nhost=%s\\npid=%s\\n\' "$_xq_t" "$HOSTNAME" "$$"'
    ' >"$_xq_dir/job.info"'
)
_RECORD_END = '_xq_now\n    printf \'end=%s\\n\' "$_xq_t" >>"$_xq_dir/job.info"'
# the same, written once at the end (one write instead of two: local jobs)
_START_TIME = "_xq_now\n_xq_t0=$_xq_t"
_RECORD_AT_END = (
    "_xq_now\n    printf 'start=%s\\nhost=%s\\npid=%s\\nend=%s\\n'"
    ' "$_xq_t0" "$HOSTNAME" "$$" "$_xq_t" >>"$_xq_dir/job.info"'
)

_WATCHDOG = """\
(
    trap - EXIT INT HUP USR1
    trap 'kill "$_xq_s" 2>/dev/null; exit 0' TERM
    sleep {timeout} & _xq_s=$!
    wait "$_xq_s" && kill -USR1 $$
) >/dev/null 2>&1 &
_xq_wd=$!
"""

_RUN_BACKGROUND = """\
{command} &
_xq_pid=$!
wait "$_xq_pid"
XQUTE_JOB_RC=$?
"""

_RUN_FOREGROUND = """\
{command}
XQUTE_JOB_RC=$?
"""


# Every variable the wrapper inherited, gone (unset: a shell command's
# subshell would still see a variable that is only un-exported). ${!X@} lists
# the names starting with X without a fork; ${ref@a} (bash >= 4.4) tells the
# exported ones ("x") from bash's own. Older bash only un-exports.
_NAMES = " ".join(
    f"${{!{c}@}}" for c in (*map(chr, range(65, 91)), *map(chr, range(97, 123)), "_")
)
_FORGET_ENV = f"""\
if ((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 404)); then
    for _xq_v in {_NAMES}; do
        declare -n _xq_r=$_xq_v
        [[ ${{_xq_r@a}} == *x* ]] && {{ unset -n _xq_r; unset "$_xq_v"; }} 2>/dev/null
        unset -n _xq_r
    done
else
    for _xq_v in {_NAMES}; do export -n "$_xq_v"; done
fi"""


def _current_fn(trial: int | None) -> str:
    """``_xq_current``: whether this wrapper's trial is still the job's trial."""
    if trial is None:
        return "_xq_current() { :; }"
    return (
        '_xq_current() { local t=; { read -r t <"$_xq_dir/job.trial"; } 2>/dev/null;'
        f' [ "$t" = {int(trial)} ]; }}'
    )


def _snippets(title: str, snippets: Iterable[str]) -> str:
    body = "\n".join(s.rstrip("\n") for s in snippets if s and s.strip())
    return f"# --- {title} (plugins)\n{body}\n" if body else ""


def render_command(cmd: str | Sequence[str]) -> str:
    """An argv runs literally; a string runs as shell code through ``eval``."""
    if isinstance(cmd, str):
        return f"(eval -- {_q(cmd)})"
    return " ".join(_q(a) for a in cmd) or ":"  # an empty command runs nothing


def render_wrapped_script(
    *,
    index: int,
    scheduler: str,
    workdir: str,
    job_metadir: str,
    cmd: str | Sequence[str],
    envs: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout_s: float | None = None,
    kill_grace_s: float = 5.0,
    own_process_group: bool = True,
    write_pid_as_jid: bool = False,
    record_times: bool | str = True,
    inherit_env: bool = True,
    trial: int | None = None,
    header: Sequence[str] = (),
    init: Iterable[str] = (),
    prep: Iterable[str] = (),
    end: Iterable[str] = (),
    shebang: str = "#!/usr/bin/env bash",
) -> str:
    """The wrapped script for one job, as text.

    ``workdir``/``job_metadir``/``cwd`` are paths as the job sees them (which differ
    from the driver's view in containers and on cloud VMs). ``header`` lines go right
    after the shebang (batch directives). ``own_process_group`` says the wrapper
    leads its process group, so a kill may target the whole group (``kill 0``);
    ``write_pid_as_jid`` has the wrapper write its pid to ``job.jid`` (local jobs).
    ``record_times``: write start/end time, host and pid to ``job.info``, at
    the start and at the end (True), or all at once at the end ("end": one
    write, for local jobs, whose cost is their file writes; False: none, only
    an end reason such as ``timeout``).
    ``inherit_env`` False: the job sees only ``envs`` (and the XQUTE_*
    variables), not the environment the wrapper was started with.
    ``trial``: record results only while ``job.trial`` holds this number, so that
    a job the driver gave up on (lost on an unreachable host, then retried) cannot
    overwrite the files of its retry when it ends after all.
    """
    at_end = record_times == "end"
    parts = [
        shebang,
        *header,
        f"# xqute job {index} ({scheduler}): generated, do not edit",
    ]
    exports = {
        "XQUTE_JOB_INDEX": str(index),
        "XQUTE_METADIR": workdir,
        "XQUTE_JOB_METADIR": job_metadir,
        **(envs or {}),
    }
    if not inherit_env:  # un-export what the wrapper inherited (no fork)
        parts.append(_FORGET_ENV)
    parts.extend(f"export {key}={_q(value)}" for key, value in exports.items())
    text = "\n".join(parts) + "\n"
    # A TERM, INT or HUP that the wrapper gets reached its whole process group
    # when it leads one (a driver's killpg, scancel): the job had its one TERM,
    # so it is not sent again. Otherwise only the wrapper got it: forward it.
    # The timeout watchdog's USR1 reaches the wrapper alone: TERM the job.
    text += (
        _PRELUDE.replace("{term_target}", "0" if own_process_group else '"$_xq_pid"')
        .replace("{caught}", _CAUGHT)
        .replace("{fatal}", _FATAL)
        .replace("{forward}", "" if own_process_group else " term")
        .replace("{alive_fn}", _ALIVE_GROUP if own_process_group else _ALIVE_PID)
        .replace("{grace_ticks}", str(max(1, round(kill_grace_s * 10))))
        .replace("{current_fn}", _current_fn(trial))
        .replace(
            "{record_end}",
            _RECORD_AT_END if at_end else (_RECORD_END if record_times else ":"),
        )
    )
    text += _snippets("on_jobcmd_init", init)
    start = _START_TIME if at_end else (_RECORD_START if record_times else "")
    text += _START.replace("{record_start}", start)
    if write_pid_as_jid:
        text += 'echo $$ >"$_xq_dir/job.jid"\n'
    if timeout_s:
        text += _WATCHDOG.replace("{timeout}", f"{float(timeout_s):g}")
    if cwd:
        text += f"cd -- {_q(cwd)} || exit 1\n"
    text += _snippets("on_jobcmd_prep", prep)
    run = _RUN_BACKGROUND if timeout_s or not own_process_group else _RUN_FOREGROUND
    text += run.replace("{command}", render_command(cmd))
    text += _snippets("on_jobcmd_end", end)
    text += 'exit "$XQUTE_JOB_RC"\n'
    return text
