"""The outcome rule (xqute.outcome), case by case: evidence in, ending out."""

import pytest

from xqute import JobOutcome, JobStatus
from xqute.outcome import (
    KILLED_BY_XQUTE,
    Ending,
    Evidence,
    Observation,
    QueueState,
    Seen,
    decide,
    gone_end,
    lost_end,
    observe_queue_state,
    queue_ending,
    read_end,
)

Out = JobOutcome
DONE = Seen.DONE
FINISHED, FAILED = JobStatus.FINISHED, JobStatus.FAILED


def seen(outcome=None, reason=None, rc=None):
    return Observation(DONE, outcome, reason, rc)


# (evidence, what read_end says, what decide says when it differs)
CASES = [
    # the backend saw it succeed: that is all (rc 0)
    (Evidence(seen(Out.SUCCEEDED)), Ending(FINISHED, Out.SUCCEEDED, 0), None),
    # the wrapper's files
    (Evidence(rc_file=0), Ending(FINISHED, Out.SUCCEEDED, 0), None),
    (Evidence(rc_file=3), Ending(FAILED, Out.FAILED, 3), None),
    (
        Evidence(rc_file=3, disk_full="disk full: /x"),
        Ending(FAILED, Out.FAILED, 3, "disk full: /x"),
        None,
    ),
    (
        Evidence(rc_file=124, wrapper_reason="timeout"),
        Ending(FAILED, Out.TIMEOUT, 124, "timeout"),
        None,
    ),
    (
        Evidence(rc_file=143, wrapper_reason="killed"),
        Ending(FAILED, Out.CANCELLED, 143, "killed"),
        None,
    ),
    (
        Evidence(rc_file=129, wrapper_reason="hangup"),
        Ending(FAILED, Out.CANCELLED, 129, "hangup"),
        None,
    ),
    # xqute's own kill is KILLED, a time limit stays TIMEOUT
    (
        Evidence(rc_file=143, wrapper_reason="killed", killing=True),
        Ending(FAILED, Out.CANCELLED, 143, "killed"),
        Ending(FAILED, Out.KILLED, 143, "killed"),
    ),
    (
        Evidence(rc_file=124, wrapper_reason="timeout", killing=True),
        Ending(FAILED, Out.TIMEOUT, 124, "timeout"),
        None,
    ),
    # no rc at all: lost, saying why
    (
        Evidence(backend="ssh"),
        Ending(FAILED, Out.LOST, None, "the job left ssh without writing job.rc"),
        None,
    ),
    (
        Evidence(rc_garbage=b"x\x00"),
        Ending(FAILED, Out.LOST, None, "its job.rc holds no exit code: b'x\\x00'"),
        None,
    ),
    (Evidence(seen(reason="gone")), Ending(FAILED, Out.LOST, None, "gone"), None),
    # what the backend saw wins over the files, unless a plain failure or a
    # loss contradicted by an rc the wrapper wrote
    (
        Evidence(seen(Out.TIMEOUT, "its limit"), rc_file=143, wrapper_reason="killed"),
        Ending(FAILED, Out.TIMEOUT, 143, "its limit"),
        None,
    ),
    (
        Evidence(seen(Out.FAILED, "exit 2", 2), rc_file=0),
        Ending(FINISHED, Out.SUCCEEDED, 0),
        None,
    ),
    (
        Evidence(seen(Out.LOST, "gone"), rc_file=0),
        Ending(FINISHED, Out.SUCCEEDED, 0),
        None,
    ),
    (
        Evidence(seen(Out.FAILED, "exit 5", 5)),
        Ending(FAILED, Out.FAILED, 5, "exit 5"),
        None,
    ),
    (
        Evidence(seen(Out.OUT_OF_MEMORY, "oom")),
        Ending(FAILED, Out.OUT_OF_MEMORY, None, "oom"),
        None,
    ),
    # a batch cluster: its words refine a failure
    (
        Evidence(seen(Out.FAILED, "exit 9"), batch=True, memory_kill="oom-kill"),
        Ending(FAILED, Out.OUT_OF_MEMORY, 137, "over its memory limit: oom-kill"),
        None,
    ),
    (
        Evidence(
            seen(Out.CANCELLED, "scancel"), batch=True, killing=True, killed_rc=143
        ),
        Ending(FAILED, Out.CANCELLED, 143, KILLED_BY_XQUTE, record_rc=True),
        Ending(FAILED, Out.KILLED, 143, KILLED_BY_XQUTE, record_rc=True),
    ),
    (
        Evidence(seen(Out.TIMEOUT, "limit"), batch=True, killing=True, killed_rc=143),
        Ending(FAILED, Out.TIMEOUT, 143, "limit", record_rc=True),
        None,
    ),
    (
        Evidence(seen(Out.CANCELLED, "scancel"), rc_file=143, batch=True, backend="b"),
        Ending(
            FAILED, Out.CANCELLED, 143, "scancel", note="xqute: b: cancelled: scancel"
        ),
        None,
    ),
    (
        Evidence(
            seen(Out.CANCELLED, "scancel"),
            rc_file=143,
            batch=True,
            cluster_explained=True,
        ),
        Ending(FAILED, Out.CANCELLED, 143, "scancel"),
        None,
    ),
    # a plain failure is noted only when no rc says more
    (
        Evidence(seen(Out.FAILED, "launch failed"), batch=True, backend="b"),
        Ending(
            FAILED,
            Out.FAILED,
            None,
            "launch failed",
            note="xqute: b: failed: launch failed",
        ),
        None,
    ),
    # a job xqute was killing that left no trace (not a batch cluster)
    (
        Evidence(gone_end(killing=True), killing=True),
        Ending(FAILED, Out.CANCELLED, None, KILLED_BY_XQUTE),
        Ending(FAILED, Out.KILLED, None, KILLED_BY_XQUTE),
    ),
]


@pytest.mark.parametrize(("evidence", "read", "decided"), CASES)
def test_the_rule(evidence, read, decided):
    assert read_end(evidence) == read
    assert decide(evidence) == (decided or read)


@pytest.mark.parametrize(
    ("evidence", "ending"),
    [
        (Evidence(skipped=True), Ending(FINISHED, Out.SKIPPED)),
        (Evidence(submit_error="no"), Ending(FAILED, Out.SUBMIT_FAILED, None, "no")),
        (
            Evidence(error="boom", rc_file=143),
            Ending(FAILED, Out.KILLED, 143, "stopped by an error: boom"),
        ),
    ],
)
def test_endings_before_the_backend(evidence, ending):
    assert decide(evidence) == ending


def test_gone_and_lost():
    assert gone_end(killing=False) is None
    assert lost_end("sge", 3) == Observation(
        DONE, Out.LOST, "the job left sge and wrote no rc file within 3s"
    )
    assert Observation("running").state is Seen.RUNNING  # its string is taken


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((Out.SUCCEEDED, 0, "x", None, None), (QueueState.COMPLETED, 0, None)),
        ((Out.TIMEOUT, 124, "x", None, 5), (QueueState.TIMEOUT, 124, "ran past 5s")),
        (
            (Out.TIMEOUT, None, None, "cancel", None),
            (QueueState.TIMEOUT, None, "ran past its time limit"),
        ),
        (
            (Out.KILLED, 143, None, "preempt", None, ("for job 9", True)),
            (QueueState.PENDING, 143, "for job 9; re-queued"),
        ),
        (
            (Out.KILLED, 143, None, "preempt", None, ("for job 9", False)),
            (QueueState.CANCELLED, 143, "for job 9"),
        ),
        (
            (Out.KILLED, 143, None, "cancel", None),
            (QueueState.CANCELLED, 143, "cancelled while running"),
        ),
        (
            (Out.KILLED, 143, None, "stop", None),
            (QueueState.CANCELLED, 143, "killed by the pool's stop(now=True)"),
        ),
        ((Out.FAILED, 3, None, None, None), (QueueState.FAILED, 3, None)),
        (
            (Out.LOST, None, "gone", None, None),
            (QueueState.FAILED, None, "lost: gone"),
        ),
        ((Out.KILLED, None, None, None, None), (QueueState.FAILED, None, "killed")),
    ],
)
def test_queue_ending(args, expected):
    assert queue_ending(*args) == expected


@pytest.mark.parametrize(
    ("row", "observation"),
    [
        (("pending", None, None, False), Observation(Seen.PENDING)),
        (("waiting", None, None, False), Observation(Seen.PENDING)),
        (("held", None, None, False), Observation(Seen.PENDING)),
        (("running", None, None, False), Observation(Seen.RUNNING)),
        (("completed", 0, None, True), seen(Out.SUCCEEDED, None, 0)),
        (("timeout", 124, "ran past 1s", True), seen(Out.TIMEOUT, "ran past 1s", 124)),
        (("cancelled", None, "why", False), seen(Out.CANCELLED, "why")),
        (("failed", 3, None, True), seen(None, None, 3)),  # its rc file says how
        (("failed", None, "lost", False), seen(Out.FAILED, "lost")),
    ],
)
def test_queue_rows_as_observations(row, observation):
    assert observe_queue_state(*row) == observation


def test_the_vocabularies_keep_their_public_values():
    assert [s.value for s in QueueState] == [
        "pending", "waiting", "held", "running",
        "completed", "failed", "cancelled", "timeout",
    ]  # fmt: skip
    assert [int(s) for s in JobStatus] == [0, 1, 2, 3, 4, 5, 6]
    assert QueueState.COMPLETED == "completed" and JobOutcome.SUCCEEDED == "succeeded"
