"""Grid Engine's status, accounting and qdel output, read: pure functions,
unit-tested with output captured from the real tools (tests/data/sge).

Facts (docs/notes/clusters.md): finished jobs vanish from qstat at once; qstat
has no filter by id, so one ``qstat -xml`` is parsed and filtered; ``qacct -j``
takes ONE job per call and may lag behind; ``failed 37`` is a limit the qmaster
enforced, ``100`` with exit status 137 a SIGKILL; ``qdel`` exits 1 for an id
that is gone.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from ...errors import BackendError
from ...outcome import PENDING, RUNNING, Observation, Seen
from ...status import JobOutcome
from ..arrays import expand_ranges

__all__ = [
    "EQW",
    "ERROR_STATE",
    "parse_error_reasons",
    "parse_qacct",
    "parse_qdel",
    "parse_qstat_xml",
]

ERROR_STATE = "the job is in SGE's error state (Eqw)"
#: a job in the error state (it would wait there forever: it is deleted)
EQW = Observation(Seen.DONE, JobOutcome.FAILED, ERROR_STATE)
_QDEL_OK = re.compile(
    r"has (?:registered the job|deleted job)(?:-array task)? (\d+(?:\.\d+)?)"
)
_QDEL_GONE = re.compile(r'job "?(\d+(?:\.\d+)?)"? does not exist')
_TIME_LIMITS = ("h_rt", "s_rt", "h_cpu", "s_cpu")


def parse_qstat_xml(stdout: str, native_ids: Sequence[str]) -> dict[str, Observation]:
    """``qstat -xml`` -> observations of our ids (``N`` or ``N.TASK``)."""
    if not stdout.strip():
        return {}
    try:
        root = ET.fromstring(stdout)
    except ET.ParseError as exc:
        raise BackendError(f"qstat -xml printed unreadable XML: {exc}") from exc
    wanted = set(native_ids)
    out: dict[str, Observation] = {}
    for entry in root.iter("job_list"):
        number = (entry.findtext("JB_job_number") or "").strip()
        state = (entry.findtext("state") or "").strip()
        tasks = (entry.findtext("tasks") or "").strip()
        if "E" in state:
            obs = EQW
        elif "q" in state:  # qw, hqw, Rq (rescheduled, queued again)
            obs = PENDING
        elif any(c in state for c in "rtsST"):  # r, t, Rr, s, S, T, dr ...
            obs = RUNNING
        else:
            obs = PENDING
        ids = [f"{number}.{t}" for t in expand_ranges(tasks)] if tasks else [number]
        for jid in ids:
            if jid in wanted:
                out[jid] = obs
    return out


def parse_qacct(stdout: str, native_id: str) -> Observation | None:
    """``qacct -j N [-t T]`` -> the outcome of the job's last record (None when
    it has none yet). ``failed`` comes first: ``failed 26`` with exit 0 is a
    failure; 37 is a limit the qmaster enforced; 100 + 137 is a SIGKILL."""
    number, _, task = native_id.partition(".")
    record: dict[str, str] | None = None
    for block in re.split(r"^=+\s*$", stdout, flags=re.MULTILINE):
        fields = {}
        for line in block.splitlines():
            key, _, value = line.strip().partition(" ")
            if key:
                fields[key] = value.strip()
        if fields.get("jobnumber") != number:
            continue
        if task and fields.get("taskid") != task:
            continue
        record = fields
    if record is None or "failed" not in record:
        return None
    failed_text = record["failed"]
    match = re.match(r"\s*(\d+)", failed_text)
    if match is None:
        return None
    code = int(match[1])
    why = failed_text.partition(":")[2].strip()
    exit_word = record.get("exit_status", "0").split(" ", 1)[0]
    exit_status = int(exit_word) if exit_word.isdigit() else None
    category = record.get("category", "")
    if code == 0:
        if exit_status == 0:
            return Observation(Seen.DONE, JobOutcome.SUCCEEDED, None, 0)
        return Observation(Seen.DONE, JobOutcome.FAILED, None, exit_status)
    if code == 37:
        if "h_vmem" in category and not any(t in category for t in _TIME_LIMITS):
            return Observation(
                Seen.DONE, JobOutcome.OUT_OF_MEMORY, f"SGE: {why}", exit_status
            )
        return Observation(
            Seen.DONE,
            JobOutcome.TIMEOUT,
            f"reached its SGE time limit ({category.strip() or why})",
            exit_status,
        )
    if code == 100 and exit_status == 137:
        return Observation(
            Seen.DONE,
            JobOutcome.CANCELLED,
            "SIGKILLed, not by xqute: deleted with qdel outside xqute (SGE"
            " cannot tell a qdel from another SIGKILL)",
            exit_status,
        )
    return Observation(
        Seen.DONE,
        JobOutcome.FAILED,
        f"SGE: failed {code}: {why}",
        exit_status if code == 100 else None,
    )


def parse_qdel(stdout: str) -> tuple[set[str], set[str]]:
    """(ids qdel deleted or registered for deletion, ids it says do not exist)."""
    return set(_QDEL_OK.findall(stdout)), set(_QDEL_GONE.findall(stdout))


def parse_error_reasons(stdout: str) -> dict[str, str]:
    """``qstat -j`` -> {job number: its 'error reason' line}."""
    out: dict[str, str] = {}
    number = ""
    for line in stdout.splitlines():
        if line.startswith("job_number:"):
            number = line.split(":", 1)[1].strip()
        elif line.startswith("error reason") and number:
            out.setdefault(number, line.split(":", 1)[1].strip())
    return out
