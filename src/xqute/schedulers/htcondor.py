"""The HTCondor backend: condor_submit, one condor_q per poll cycle,
condor_history, condor_rm.

A job is ``condor_submit -terse -a LINE ... -queue 1``: its description is
``name = value`` lines on the command line (written by ``submit_value``), its
``executable`` its wrapped script (never a command split into ``arguments``).
Any submit command passes through; generic resources map to ``request_*`` and
a time limit. A held job would wait forever: unless it waits for a release
(``condor_hold``, ``hold = true``), xqute removes it and ends it with the hold
reason (time limit, HoldReasonCode 47 or 3/47: ``timeout``; memory, 34:
``out_of_memory``). The facts behind this (HTCondor 23.9; e.g. the time limit
is also a ``periodic_hold``, as ``allowed_execute_duration`` was not enforced
reliably; root cannot submit) are in docs/backends/htcondor.md.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..errors import BackendError, CommandFailed, ConfigError
from ..job import Job
from ..outcome import PENDING, RUNNING, Observation, Seen
from ..status import JobOutcome
from .batch import BatchScheduler
from .helpers.command import CommandResult

__all__ = ["HTCondorScheduler", "parse_condor_history", "parse_condor_q"]

QUEUE_ATTRS = ("ClusterId", "ProcId", "JobStatus", "HoldReasonCode")
QUEUE_ATTRS += ("HoldReasonSubCode", "HoldReason", "RemoveReason")
HISTORY_ATTRS = (
    *QUEUE_ATTRS,
    "ExitCode",
    "ExitBySignal",
    "ExitSignal",
    "LastJobStatus",
)
HISTORY_ATTRS += ("LastHoldReasonCode", "LastHoldReasonSubCode", "LastHoldReason")
# JobStatus (also 2 running, 6 transferring output, 7 suspended)
_IDLE, _REMOVED, _COMPLETED, _HELD = 1, 3, 4, 5
# HoldReasonCode: waits for a release (condor_hold, hold = true, spooling input)
_WAITING_HOLDS = {1, 15, 16}
_TIME_LIMIT_HOLD = 47  # JobDurationExceeded (allowed_execute_duration)
_POLICY_HOLD = 3  # periodic_hold; xqute's time limit has subcode 47
_MEMORY_HOLD = 34  # JobOutOfResources
#: submit commands xqute writes itself
_RESERVED = {"executable", "arguments", "args", "queue", "transfer_executable"}
_NAME = re.compile(r"^(\+|[Mm][Yy]\.)?[A-Za-z_][A-Za-z0-9_.]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ID = re.compile(r"^\s*(\d+)\.(\d+)\s*-\s*(\d+)\.(\d+)\s*$")
_GONE_ALREADY = "couldn't find/remove all jobs"
_TOOLS = ("condor_submit", "condor_q", "condor_rm", "condor_history")
_TRANSIENT = ("can't find address", "failed to connect", "refused", "timed out")


@dataclass(frozen=True, slots=True)
class HeldObservation(Observation):
    """A job HTCondor holds for a reason xqute cannot fix: it is removed."""


# ---------------------------------------------------------------------- submit
def submit_value(name: str, value: Any) -> str:
    """``value`` for the submit language, where a value is the rest of its line,
    trimmed, with ``$(...)`` macros expanded: control characters (a newline
    starts a new command), outer blanks, a trailing backslash (continuation),
    ``$$`` (``$$(attr)`` is replaced at match time) and the text ``$(DOLLAR)``
    (its escaped form still ends up as ``$``) are rejected; ``$`` is
    written ``$(DOLLAR)``; a string for ``+Attr``/``My.Attr`` becomes a quoted
    ClassAd string (``\\"`` cannot be written: rejected)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    problem = None
    if not isinstance(value, str | Path):
        problem = f"it is a {type(value).__name__}: give text, a number or true/false"
    elif _CONTROL.search(text):
        problem = "it contains a newline or another control character"
    elif text != text.strip():
        problem = "it has leading or trailing blanks (condor_submit drops them)"
    elif text.endswith("\\"):
        problem = "it ends with a backslash (a line continuation)"
    elif "$$" in text:
        problem = "it contains '$$' (HTCondor replaces $$(...) when the job is matched)"
    elif "$(dollar)" in text.lower():
        problem = "it contains '$(DOLLAR)' (HTCondor makes it '$' however quoted)"
    elif _is_classad_attr(name) and '\\"' in text:
        problem = "it contains a backslash before a quote"
    if problem:
        raise ConfigError(
            f"HTCondor option {name!r} value {text!r} cannot be written safely:"
            f" {problem}"
        )
    if _is_classad_attr(name):
        text = '"' + text.replace('"', '\\"') + '"'
    return text.replace("$", "$(DOLLAR)")


def _is_classad_attr(name: str) -> bool:
    return name.startswith("+") or name[:3].lower() == "my."


def render_submit(options: Mapping[str, Any]) -> list[str]:
    """``name = value`` lines of a submit description (None values are left out)."""
    lines = []
    for name, value in options.items():
        if not _NAME.fullmatch(name):  # match() would take "queue\n"
            raise ConfigError(
                f"HTCondor option name {name!r} is invalid: use"
                " letters, digits, '_', '.', after '+' or 'My.'"
            )
        if value is not None:
            lines.append(f"{name} = {submit_value(name, value)}")
    return lines


def submit_args(lines: Sequence[str], count: int) -> list[str]:
    """condor_submit arguments: each line as ``-a LINE``, then ``-queue N``
    (no file: condor_submit reads the empty stdin)."""
    pairs = [a for line in lines for a in ("-a", line)]
    return ["-terse", *pairs, "-queue", str(count)]


def parse_submit_ids(stdout: str) -> list[str]:
    """``condor_submit -terse``: ``C.P - C.Q`` -> ``["C.P", ..., "C.Q"]``."""
    match = _ID.match(stdout.strip().splitlines()[-1] if stdout.strip() else "")
    if not match or match[1] != match[3]:
        raise BackendError(f"condor_submit printed no job ids: {stdout!r}")
    first, last = int(match[2]), int(match[4])
    return [f"{match[1]}.{proc}" for proc in range(first, last + 1)]


# ---------------------------------------------------------------------- status
def _ads(stdout: str, tool: str) -> list[dict[str, Any]]:
    if not stdout.strip():
        return []  # condor_q prints nothing when no job matches
    try:
        ads = json.loads(stdout)
    except json.JSONDecodeError as exc:
        raise BackendError(f"{tool} -json printed unreadable JSON: {exc}") from exc
    return [ad for ad in ads if isinstance(ad, dict)]


def _held(ad: Mapping[str, Any]) -> Observation:
    code, sub = ad.get("HoldReasonCode"), ad.get("HoldReasonSubCode")
    why = f"{ad.get('HoldReason') or 'no reason given'} (HoldReasonCode {code})"
    if code in _WAITING_HOLDS:
        return PENDING
    outcome, what = JobOutcome.FAILED, "held by HTCondor"
    if code == _TIME_LIMIT_HOLD or (code == _POLICY_HOLD and sub == _TIME_LIMIT_HOLD):
        outcome, what = JobOutcome.TIMEOUT, "reached its HTCondor time limit"
    elif code == _MEMORY_HOLD:
        outcome, what = JobOutcome.OUT_OF_MEMORY, "over its HTCondor memory limit"
    return HeldObservation(Seen.DONE, outcome, f"{what}: {why}")


def _removed(ad: Mapping[str, Any]) -> Observation:
    last = {k[4:]: v for k, v in ad.items() if k.startswith("Last")}  # history
    held = _held(last) if last.get("JobStatus") == _HELD else PENDING
    if held.state is Seen.DONE:  # held, then removed: the hold says why
        why = f"{held.reason}; then removed"
        return Observation(Seen.DONE, held.outcome, why, _exit_rc(ad))
    why = f"removed from HTCondor outside xqute: {ad.get('RemoveReason') or '?'}"
    return Observation(Seen.DONE, JobOutcome.CANCELLED, why, _exit_rc(ad))


def _exit_rc(ad: Mapping[str, Any]) -> int | None:
    """128+N for a job killed by signal N, else its ExitCode (None: unknown)."""
    if ad.get("ExitBySignal") is True and isinstance(ad.get("ExitSignal"), int):
        return 128 + ad["ExitSignal"]
    code = ad.get("ExitCode")
    return code if isinstance(code, int) else None


def _ended(ad: Mapping[str, Any]) -> Observation:
    rc = _exit_rc(ad)
    if rc == 0:
        return Observation(Seen.DONE, JobOutcome.SUCCEEDED, None, 0)
    signal = ad.get("ExitSignal") if ad.get("ExitBySignal") is True else None
    why = f"killed by signal {signal} (HTCondor ExitSignal)" if signal else None
    return Observation(Seen.DONE, JobOutcome.FAILED, why, rc)


_IN_QUEUE = {_IDLE: lambda ad: PENDING, _HELD: _held, _REMOVED: _removed}
_IN_QUEUE[_COMPLETED] = _ended


def parse_condor_q(stdout: str, native_ids: Sequence[str]) -> dict[str, Observation]:
    """``condor_q IDS -json -attributes ...`` -> observations of our ``C.P`` ids
    (a removed job still in the queue is being killed: cancelled)."""
    wanted = set(native_ids)
    out: dict[str, Observation] = {}
    for ad in _ads(stdout, "condor_q"):
        jid = f"{ad.get('ClusterId')}.{ad.get('ProcId')}"
        if jid not in wanted:
            continue
        # running, transferring output, suspended: running
        out[jid] = _IN_QUEUE.get(ad.get("JobStatus"), lambda ad: RUNNING)(ad)
    return out


def parse_condor_history(
    stdout: str, native_ids: Sequence[str]
) -> dict[str, Observation]:
    """``condor_history IDS -json -attributes ...`` -> outcomes of our ids that
    left the queue: completed (ExitCode, or 128+ExitSignal) or removed."""
    wanted = set(native_ids)
    out: dict[str, Observation] = {}
    for ad in _ads(stdout, "condor_history"):
        jid = f"{ad.get('ClusterId')}.{ad.get('ProcId')}"
        if jid not in wanted or jid in out:  # newest first
            continue
        if ad.get("JobStatus") in (_COMPLETED, _REMOVED):
            out[jid] = _IN_QUEUE[ad["JobStatus"]](ad)
    return out


# ---------------------------------------------------------------------- backend
class HTCondorScheduler(BatchScheduler):
    """Run jobs through HTCondor (condor_submit/condor_q/condor_history/condor_rm)."""

    name: ClassVar[str] = "htcondor"
    opt_prefixes: ClassVar[tuple[str, ...]] = ("htcondor_",)
    backend_options: ClassVar[None] = None  # every submit command passes through
    # The starter makes the wrapper a session leader, but its SIGTERM (condor_rm,
    # a hold) reaches only the wrapper: the command must run in the background
    # for the wrapper's trap to run at once. What is left is SIGKILLed after
    # job_max_vacate_time.
    own_process_group: ClassVar[bool] = False
    tools: ClassVar[dict[str, str]] = {t: t for t in _TOOLS}
    transient_errors: ClassVar[tuple[str, ...]] = _TRANSIENT
    default_submit_concurrency: ClassVar[int | None] = 8
    supports_arrays: ClassVar[bool] = True
    # the array script gets its task id (ProcId) as its first argument
    array_task_env: ClassVar[str] = "1"
    killed_rc: ClassVar[int | None] = 143  # condor_rm sends SIGTERM

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.options = self.backend_config()  # not the tool paths
        given = {k.lower() for k in self.options}
        reserved = sorted(given & _RESERVED)
        if reserved:
            raise ConfigError(
                f"HTCondor option(s) {', '.join(map(repr, reserved))} are set by"
                " xqute: the job's executable is its wrapped script"
            )
        self._given = given
        render_submit(self.options)  # reject unsafe names and values now
        render_submit({"batch_name": self.jobname_prefix, "log": self.workdir})

    # ------------------------------------------------------------------ options
    def job_options(self, job: Job) -> dict[str, Any]:
        """Submit commands of a job: the options, defaults and its resources
        (not its executable, files and name)."""
        res = job.resources
        mem = None if res.mem_mb is None else f"{res.mem_mb}M"
        opts = self._own(
            dict(self.options),
            universe="vanilla",
            should_transfer_files="NO",  # a shared filesystem, as on Slurm
            getenv=True,
            # the wrapper needs kill_grace_s after condor_rm's SIGTERM
            job_max_vacate_time=math.ceil(self.kill_grace_s) + 2,
            request_cpus=res.cpus,
            request_memory=mem,
            request_gpus=res.gpus or None,
        )
        limit = res.time_limit_s
        if limit is not None and "allowed_execute_duration" not in self._given:
            seconds = max(1, math.ceil(limit))
            # the time-limit hold alone was not reliable: also a periodic_hold
            hold = {
                "periodic_hold": "JobStatus == 2 && time() -"
                f" JobCurrentStartExecutingDate > {seconds}",
                "periodic_hold_reason": f'"time limit of {seconds}s exceeded"',
                "periodic_hold_subcode": _TIME_LIMIT_HOLD,
            }
            if "periodic_hold" in self._given:
                hold = {}
            opts |= self._own({"allowed_execute_duration": seconds}, **hold)
        return opts

    def _own(self, opts: dict[str, Any], **own: Any) -> dict[str, Any]:
        """``opts`` plus xqute's own commands the user did not give (not None)."""
        own = {k: v for k, v in own.items() if k not in self._given and v is not None}
        return {**opts, **own}

    def submit_lines(self, job: Job, script: Path) -> list[str]:
        # no output/error/log: the wrapper writes the job's files itself, and
        # HTCondor would open them as the job's user before the job starts
        opts = self._own(self.job_options(job), batch_name=self.job_name(job))
        executable = f"executable = {submit_value('executable', script)}"
        return [executable, *render_submit(opts)]

    # ------------------------------------------------------------------ builders
    def submit_argv(self, job: Job, script: Path) -> list[str]:
        return [
            self.tool("condor_submit"),
            *submit_args(self.submit_lines(job, script), 1),
        ]

    def parse_submit(self, result: CommandResult) -> str:
        return parse_submit_ids(result.stdout)[0]

    def status_argv(self, native_ids: Sequence[str]) -> list[str]:
        attrs = ",".join(QUEUE_ATTRS)
        return [self.tool("condor_q"), *native_ids, "-json", "-attributes", attrs]

    def parse_status(
        self, result: CommandResult, native_ids: Sequence[str]
    ) -> dict[str, Observation]:
        return parse_condor_q(result.stdout, native_ids)

    def kill_argv(self, native_ids: Sequence[str]) -> list[str]:
        return [self.tool("condor_rm"), *native_ids]

    def check_kill(self, result: CommandResult, native_ids: Sequence[str]) -> None:
        """condor_rm exits 1 when a job has left the queue already."""
        said = (result.stdout + result.stderr).lower()
        if result.rc != 0 and _GONE_ALREADY not in said:
            raise CommandFailed(result.argv, result.rc, result.stdout, result.stderr)

    def accounting_argv(self, native_ids: Sequence[str]) -> list[str] | None:
        # -limit: stop reading the history file once every id was found
        limit = ["-limit", str(len(native_ids))]
        attrs = ["-json", "-attributes", ",".join(HISTORY_ATTRS)]
        return [self.tool("condor_history"), *native_ids, *limit, *attrs]

    def parse_accounting(
        self, result: CommandResult, native_ids: Sequence[str]
    ) -> dict[str, Observation]:
        return parse_condor_history(result.stdout, native_ids) if result.rc == 0 else {}

    # ------------------------------------------------------------------ running
    async def wrapped_job_script(self, job: Job) -> Path:
        """HTCondor runs the script itself (no copy, unlike sbatch): executable,
        still user-only (it holds the job's environment)."""
        path = await super().wrapped_job_script(job)
        await self.file_io(path.chmod, 0o700)
        return path

    async def after_done(self, job: Job, observation: Observation | None) -> None:
        """A job held for a reason xqute cannot fix would wait in the queue
        forever: it is removed (it ends with the hold reason)."""
        if isinstance(observation, HeldObservation):
            await self.kill_jobs([job])

    # ------------------------------------------------------------------ arrays
    def array_key(self, job: Job) -> Hashable:
        return tuple(render_submit(self.job_options(job)))

    def array_header(self, jobs: Sequence[Job], array_dir: Path) -> list[str]:
        return []  # the description is on condor_submit's command line

    def array_submit_argv(self, jobs: Sequence[Job], script: Path) -> list[str]:
        script.chmod(0o700)  # just written by submit_array; HTCondor runs it
        own = self._own(
            self.job_options(jobs[0]),
            batch_name=f"{self.jobname_prefix}-array-{jobs[0].index}",
        )
        lines = [
            f"executable = {submit_value('executable', script)}",
            "arguments = $(ProcId)",  # the task id; the array script picks its job
            *render_submit(own),
        ]
        return [self.tool("condor_submit"), *submit_args(lines, len(jobs))]

    def parse_array_submit(
        self, result: CommandResult, task_ids: list[int]
    ) -> list[str]:
        ids = parse_submit_ids(result.stdout)
        if len(ids) != len(task_ids):
            raise BackendError(f"condor_submit queued {result.stdout!r} for {task_ids}")
        return ids
