"""The decisions of a run, as pure functions over plain numbers and dicts.

The shell (``runs.py``, ``advance.py``) keeps counters in ``run_tasks`` and
asks these functions what they mean; nothing here reads the db or the clock,
so every rule is a table-driven unit test.

- ``readiness``: from a task's dependency counters and trigger rule, whether it
  may start, must wait, or can never start (``upstream_failed``). Work per
  finished task is one counter bump per child: no scan of the run.
- ``item_succeeded``: an item's queue job ended; did it succeed (exit codes)?
- ``retry_delay_s``: whether a failed item runs again, and after how long
  (exponential with jitter, or linear backoff).
- ``task_outcome``: from a parallel task's item counters and its completion
  strategy, whether the task is decided.
- ``run_outcome``: the final state of a run whose tasks are all final.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..queue.states import QueueState

__all__ = [
    "FINAL_TASK_STATES",
    "item_succeeded",
    "readiness",
    "retry_delay_s",
    "run_outcome",
    "task_outcome",
]

#: task states; the final ones never change within a run attempt
TASK_STATES = (
    "blocked",
    "ready",
    "queued",
    "running",
    "succeeded",
    "failed",
    "upstream_failed",
    "skipped",
    "cancelled",
)
FINAL_TASK_STATES = frozenset(
    {"succeeded", "failed", "upstream_failed", "skipped", "cancelled"}
)
#: final task states that count as a failed dependency
FAILED_TASK_STATES = frozenset({"failed", "upstream_failed", "cancelled", "skipped"})
#: runs.cancel_requested: what the run ends as once nothing of it runs
CANCEL_STATES = {1: "cancelled", 2: "timeout"}


def readiness(rule: str, total: int, succeeded: int, failed: int, done: int) -> str:
    """``"ready"``, ``"wait"`` or ``"upstream_failed"`` for a task with ``total``
    dependencies of which ``done`` ended: ``succeeded`` succeeded, ``failed``
    did not (failed, upstream failed, cancelled, skipped).

    - ``all_success`` (default): every dependency succeeded;
    - ``all_done``: every dependency ended, however;
    - ``one_success``: at least one succeeded (impossible once all ended without);
    - ``none_failed``: every dependency ended and none failed;
    - ``all_failed``: every dependency failed (impossible after one success).
    """
    if rule == "all_success":
        if failed:
            return "upstream_failed"
        return "ready" if succeeded == total else "wait"
    if rule == "all_done":
        return "ready" if done == total else "wait"
    if rule == "one_success":
        if succeeded or total == 0:
            return "ready"
        return "upstream_failed" if done == total else "wait"
    if rule == "none_failed":
        if failed:
            return "upstream_failed"
        return "ready" if done == total else "wait"
    if rule == "all_failed":
        if succeeded:
            return "upstream_failed"
        return "ready" if failed == total else "wait"
    raise ValueError(f"unknown trigger rule {rule!r}")


def item_succeeded(state: str, rc: int | None, success_codes: Sequence[int]) -> bool:
    """Whether an item whose queue job ended in ``state`` with ``rc`` succeeded:
    it exited with one of ``success_codes`` (a queue job that exited non-zero
    is ``failed`` in the queue, yet may count as success here)."""
    if state not in (QueueState.COMPLETED, QueueState.FAILED) or rc is None:
        return False  # timeout, cancelled, or it never ran
    return rc in success_codes


def retry_delay_s(
    policy: Mapping[str, Any] | None,
    attempt: int,
    state: str,
    rc: int | None,
    u: float,
) -> float | None:
    """Seconds to wait before running a failed item again, or None: no retry.

    ``policy``: the stored restart policy (``max_retries``, ``backoff``,
    ``retry_exit_codes``, ``no_retry_exit_codes``); ``attempt``: the attempt
    that just failed (1 for the first run); ``u``: a uniform random number in
    [0, 1) for the jitter. A cancelled item is never retried.
    """
    if not policy or policy.get("policy", "never") != "on_failure":
        return None
    if attempt > int(policy.get("max_retries", 0)) or state == QueueState.CANCELLED:
        return None
    only = policy.get("retry_exit_codes")
    if only is not None and rc not in only:
        return None
    if rc is not None and rc in policy.get("no_retry_exit_codes", ()):
        return None
    backoff = policy.get("backoff")
    if not backoff:
        return 0.0
    if backoff.get("type", "exponential") == "linear":
        delay = float(backoff.get("interval", 60.0)) * attempt
    else:
        initial = float(backoff.get("initial", 10.0))
        delay = initial * float(backoff.get("multiplier", 2.0)) ** (attempt - 1)
    cap = backoff.get("max", None if backoff.get("type") == "linear" else 300.0)
    if cap is not None:
        delay = min(delay, float(cap))
    jitter = float(
        backoff.get("jitter", 0.0 if backoff.get("type") == "linear" else 0.1)
    )
    return max(0.0, delay * (1.0 + jitter * (2.0 * u - 1.0)))


def task_outcome(
    completions: int, succeeded: int, failed: int, strategy: str
) -> str | None:
    """``"succeeded"``, ``"failed"`` or None (undecided) for a task whose items
    ended ``succeeded``/``failed`` times so far (failed: for good, retries
    spent). ``all_successful``: every item must succeed, the first failure
    decides; ``any_successful``: the first success decides."""
    if strategy == "any_successful":
        if succeeded:
            return "succeeded"
        return "failed" if failed >= completions else None
    if failed:
        return "failed"
    return "succeeded" if succeeded >= completions else None


def run_outcome(tasks_failed: int, cancel_requested: int) -> str:
    """The final state of a run once none of its tasks can change."""
    if cancel_requested:
        return CANCEL_STATES.get(cancel_requested, "cancelled")
    return "failed" if tasks_failed else "succeeded"
