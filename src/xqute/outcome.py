"""How a job ended, decided in one place: the vocabularies and the rule.

Three vocabularies describe a job, each an enum here, mapped to each other only
in this module:

- ``Seen`` — what a backend's poll says of a job (``Observation.state``):
  pending, running, done (it ended; ``outcome``/``rc``/``reason`` may say how)
  or gone (the backend no longer knows it);
- ``JobStatus`` and ``JobOutcome`` (``status.py``) — the engine's state of a job
  (``FINISHED`` is success) and why it ended (``succeeded`` ...);
- ``QueueState`` — a queue job's state (``completed`` is success).

The rule, ``decide(Evidence) -> Ending``, in the style of ``queue/policy.py``:
a pure function of plain data, table-tested in tests/unit/test_outcome.py.
The evidence is what the backend said last (``Observation``), what the job's
wrapper wrote (its rc file and end reason), whether xqute was killing it, what
the cluster wrote in its files, and a failed submission or an error that
stopped the run. Read in this order:

1. a skipped job (a plugin vetoed its submission) succeeded; a submission that
   failed is ``submit_failed``; a job stopped by an error of a plugin or a
   backend was killed (with the rc its wrapper wrote, if any);
2. a backend that saw the job succeed has the last word (rc 0);
3. a failure the backend saw (a cluster's time limit, out of memory, node
   failure ...) wins, unless it is a plain failure or a loss contradicted by an
   rc the wrapper wrote; else the wrapper's rc and end reason say how it ended
   (``timeout`` 124; ``killed``/``interrupted``/``hangup`` -> cancelled: from
   outside xqute, as far as the backend knows); no rc at all is ``lost``;
4. on a batch cluster, a failure is refined by what the cluster wrote (a memory
   kill -> ``out_of_memory``, rc 137); a job xqute was killing that left no rc
   gets the backend's ``killed_rc`` (recorded in its folder) and the reason
   "killed by xqute"; other cluster-decided outcomes get a line in the job's
   stderr unless the cluster wrote its own there;
5. xqute's own kill (halt, a signal, the user) is ``killed``, except a time
   limit, which stays ``timeout``. Success is ``FINISHED``, anything else
   ``FAILED``.

``queue_ending`` maps an ending to the queue's state and reason, and
``observe_queue_state`` a queue row back to an ``Observation``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from .status import JobOutcome, JobStatus, QueueState

__all__ = [
    "GONE",
    "KILLED_BY_XQUTE",
    "PENDING",
    "RUNNING",
    "Ending",
    "Evidence",
    "Observation",
    "QueueState",
    "Seen",
    "decide",
    "gone_end",
    "lost_end",
    "observe_queue_state",
    "queue_ending",
    "read_end",
]

KILLED_BY_XQUTE = "killed by xqute"


class Seen(StrEnum):
    """What one poll learned of a job's state in its backend."""

    PENDING = "pending"  # queued in the backend
    RUNNING = "running"
    DONE = "done"  # it ended: the observation may say how
    GONE = "gone"  # the backend no longer knows it


@dataclass(frozen=True, slots=True)
class Observation:
    """What one poll learned about a job: ``state`` (a ``Seen``; its string is
    accepted too), and for a job that ended, how, as far as the backend knows."""

    state: Seen
    outcome: JobOutcome | None = None
    reason: str | None = None
    rc: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.state, Seen):
            object.__setattr__(self, "state", Seen(self.state))


PENDING = Observation(Seen.PENDING)
RUNNING = Observation(Seen.RUNNING)
GONE = Observation(Seen.GONE)

#: the wrapper's end reasons (job.info); a signal the wrapper caught came from
#: outside xqute as far as the backend knows (rule 5 turns xqute's own kills
#: into KILLED)
_REASON_OUTCOMES = {
    "timeout": JobOutcome.TIMEOUT,
    "killed": JobOutcome.CANCELLED,
    "interrupted": JobOutcome.CANCELLED,
    "hangup": JobOutcome.CANCELLED,
}
#: outcomes a cluster decides, noted in the job's stderr (rule 4)
_CLUSTER_OUTCOMES = frozenset(
    {
        JobOutcome.CANCELLED,
        JobOutcome.TIMEOUT,
        JobOutcome.OUT_OF_MEMORY,
        JobOutcome.NODE_FAILURE,
        JobOutcome.PREEMPTED,
    }
)
_MEMORY_RC = 137  # a memory kill is a SIGKILL


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything known about how a job ended, as plain data."""

    #: what the backend said last (None: only the job's files can tell)
    observation: Observation | None = None
    #: the rc its wrapper wrote (job.rc), and its end reason (job.info); what
    #: its rc file holds when that is no exit code
    rc_file: int | None = None
    wrapper_reason: str | None = None
    rc_garbage: bytes | None = None
    #: why its filesystem is full, when it is (looked at for a failure that
    #: says nothing else: it may be why)
    disk_full: str | None = None
    #: xqute was killing it (halt, a signal, a user's cancel, a time limit)
    killing: bool = False
    #: the backend's name, for messages
    backend: str = "the backend"
    #: a batch cluster runs it: rule 4 applies
    batch: bool = False
    #: the rc a batch backend gives a job xqute killed that left none
    killed_rc: int | None = None
    #: what the cluster wrote in the job's files: a memory kill (its words),
    #: and whether it explained the end there itself
    memory_kill: str | None = None
    cluster_explained: bool = False
    #: its submission failed (why), or an error stopped it (why)
    submit_error: str | None = None
    error: str | None = None
    #: a plugin vetoed its submission
    skipped: bool = False


@dataclass(frozen=True, slots=True)
class Ending:
    """How a job ended: its final status, outcome, rc and reason; ``record_rc``:
    the rc is xqute's and goes into the job's folder; ``note``: a line for the
    job's stderr."""

    status: JobStatus
    outcome: JobOutcome
    rc: int | None = None
    reason: str | None = None
    record_rc: bool = False
    note: str | None = None


def read_end(e: Evidence) -> Ending:
    """Rules 2-4: how the job ended as its backend and its files tell (before
    xqute's own kill is named; ``Scheduler.job_result`` returns this)."""
    obs = e.observation
    if obs is not None and obs.outcome is JobOutcome.SUCCEEDED:
        return _ending(JobOutcome.SUCCEEDED, obs.rc or 0, None)
    rc, reason = e.rc_file, e.wrapper_reason
    recorded = rc is not None
    if rc is None and obs is not None and obs.rc is not None:
        rc = obs.rc
    if (
        obs is not None
        and obs.outcome is not None
        and obs.outcome.is_failure
        and not (recorded and obs.outcome in (JobOutcome.FAILED, JobOutcome.LOST))
    ):
        end = _ending(obs.outcome, rc, obs.reason or reason)
    elif rc is None:
        end = _ending(JobOutcome.LOST, None, _lost_reason(e))
    elif reason in _REASON_OUTCOMES:
        end = _ending(_REASON_OUTCOMES[reason], rc, reason)
    elif rc == 0:
        end = _ending(JobOutcome.SUCCEEDED, rc, reason)
    else:
        end = _ending(JobOutcome.FAILED, rc, reason or e.disk_full)
    return _cluster_end(e, end) if e.batch and end.outcome.is_failure else end


def _lost_reason(e: Evidence) -> str:
    obs = e.observation
    if obs is not None and obs.reason:
        return obs.reason
    if e.rc_garbage is not None:
        return f"its job.rc holds no exit code: {e.rc_garbage!r}"
    return f"the job left {e.backend} without writing job.rc"


def _cluster_end(e: Evidence, end: Ending) -> Ending:
    """Rule 4: a failure on a batch cluster."""
    rc, outcome, reason = end.rc, end.outcome, end.reason
    if e.memory_kill and outcome in (JobOutcome.FAILED, JobOutcome.CANCELLED):
        rc = _MEMORY_RC if rc is None else rc
        outcome = JobOutcome.OUT_OF_MEMORY
        reason = f"over its memory limit: {e.memory_kill}"
    if e.killing:
        record = rc is None and e.killed_rc is not None
        if record:
            rc = e.killed_rc
        if outcome is not JobOutcome.TIMEOUT:
            reason = KILLED_BY_XQUTE  # the cluster saw a cancel: it was ours
        return replace(end, outcome=outcome, rc=rc, reason=reason, record_rc=record)
    obs = e.observation
    note = None
    if (
        obs is not None
        and obs.outcome is outcome
        and obs.reason
        and (outcome in _CLUSTER_OUTCOMES or rc is None)
        and not e.cluster_explained
    ):
        note = f"xqute: {e.backend}: {outcome.value}: {reason}"
    return replace(end, outcome=outcome, rc=rc, reason=reason, note=note)


def decide(e: Evidence) -> Ending:
    """The whole rule (see the module docstring)."""
    if e.skipped:
        return _ending(JobOutcome.SKIPPED, None, None)
    if e.submit_error is not None:
        return _ending(JobOutcome.SUBMIT_FAILED, None, e.submit_error)
    if e.error is not None:
        return _ending(JobOutcome.KILLED, e.rc_file, f"stopped by an error: {e.error}")
    end = read_end(e)
    if e.killing and end.outcome.is_failure and end.outcome is not JobOutcome.TIMEOUT:
        end = replace(end, outcome=JobOutcome.KILLED)
    return end


def _ending(outcome: JobOutcome, rc: int | None, reason: str | None) -> Ending:
    status = JobStatus.FAILED if outcome.is_failure else JobStatus.FINISHED
    return Ending(status, outcome, rc, reason)


def gone_end(killing: bool) -> Observation | None:
    """A job that left the backend without an rc file: ended, when xqute was
    killing it (a kill can land before its wrapper set its traps, and then it
    writes nothing); else unknown yet (None: ask accounting, then wait)."""
    if killing:
        return Observation(Seen.DONE, JobOutcome.CANCELLED, KILLED_BY_XQUTE)
    return None


def lost_end(backend: str, grace_s: float) -> Observation:
    """A job that stayed gone, without an rc file or an accounting record, for
    the lost grace."""
    return Observation(
        Seen.DONE,
        JobOutcome.LOST,
        f"the job left {backend} and wrote no rc file within {grace_s:g}s",
    )


def queue_ending(
    outcome: JobOutcome,
    rc: int | None,
    reason: str | None,
    kill_reason: str | None,
    timeout_s: float | None,
    preempted: tuple[str, bool] | None = None,
) -> tuple[QueueState, int | None, str | None]:
    """A queue job's final state and reason: completed, timeout, preempted
    (back to pending, or cancelled, as its class says), cancelled (the pool
    killed it because a user cancelled it or the pool was stopped now) or
    failed (anything else, with the reason). ``kill_reason``: why the pool
    killed it ("cancel", "stop", "preempt"), if it did; ``preempted``: (why,
    re-queue it) for a preempted job."""
    if outcome is JobOutcome.SUCCEEDED:
        return QueueState.COMPLETED, rc, None
    if outcome is JobOutcome.TIMEOUT:
        limit = f"{timeout_s:g}s" if timeout_s else "its time limit"
        return QueueState.TIMEOUT, rc, f"ran past {limit}"
    if kill_reason == "preempt" and preempted is not None:
        why, requeue = preempted
        if requeue:
            return QueueState.PENDING, rc, f"{why}; re-queued"
        return QueueState.CANCELLED, rc, why
    if kill_reason == "cancel":
        return QueueState.CANCELLED, rc, "cancelled while running"
    if kill_reason == "stop":
        return QueueState.CANCELLED, rc, "killed by the pool's stop(now=True)"
    if outcome is JobOutcome.FAILED and reason is None:
        return QueueState.FAILED, rc, None  # its rc says it all
    text = outcome.value if reason is None else f"{outcome.value}: {reason}"
    return QueueState.FAILED, rc, text


def observe_queue_state(
    state: str, rc: int | None, reason: str | None, rc_file_written: bool
) -> Observation:
    """What a queue job's row says of it, for an engine that queued it: a failed
    one ends as its engine wrapper's rc file says, if it got to write one."""
    queued = QueueState(state)
    if queued in (QueueState.PENDING, QueueState.WAITING, QueueState.HELD):
        return PENDING
    if queued is QueueState.RUNNING:
        return RUNNING
    if queued is QueueState.COMPLETED:
        return Observation(Seen.DONE, JobOutcome.SUCCEEDED, None, rc)
    if queued is QueueState.TIMEOUT:
        return Observation(Seen.DONE, JobOutcome.TIMEOUT, reason, rc)
    if queued is QueueState.CANCELLED:
        return Observation(Seen.DONE, JobOutcome.CANCELLED, reason, rc)
    outcome = None if rc_file_written else JobOutcome.FAILED
    return Observation(Seen.DONE, outcome, reason, rc)
