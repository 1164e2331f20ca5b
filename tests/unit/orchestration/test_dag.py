"""The pure decisions of a run, table by table."""

import pytest

from xqute.orchestration.dag import (
    item_succeeded,
    readiness,
    retry_delay_s,
    run_outcome,
    task_outcome,
)


@pytest.mark.parametrize(
    ("rule", "total", "succeeded", "failed", "done", "verdict"),
    [
        ("all_success", 0, 0, 0, 0, "ready"),
        ("all_success", 3, 2, 0, 2, "wait"),
        ("all_success", 3, 3, 0, 3, "ready"),
        ("all_success", 3, 1, 1, 2, "upstream_failed"),
        ("all_done", 2, 0, 1, 1, "wait"),
        ("all_done", 2, 0, 2, 2, "ready"),
        ("one_success", 3, 0, 2, 2, "wait"),
        ("one_success", 3, 1, 2, 3, "ready"),
        ("one_success", 3, 0, 3, 3, "upstream_failed"),
        ("none_failed", 2, 1, 0, 1, "wait"),
        ("none_failed", 2, 2, 0, 2, "ready"),
        ("none_failed", 2, 1, 1, 2, "upstream_failed"),
        ("all_failed", 2, 0, 1, 1, "wait"),
        ("all_failed", 2, 0, 2, 2, "ready"),
        ("all_failed", 2, 1, 0, 1, "upstream_failed"),
    ],
)
def test_readiness(rule, total, succeeded, failed, done, verdict):
    assert readiness(rule, total, succeeded, failed, done) == verdict


@pytest.mark.parametrize(
    ("state", "rc", "codes", "ok"),
    [
        ("completed", 0, [0], True),
        ("failed", 3, [0], False),
        ("failed", 3, [0, 3], True),
        ("timeout", 124, [0, 124], False),
        ("cancelled", 0, [0], False),
        ("failed", None, [0], False),
    ],
)
def test_item_succeeded(state, rc, codes, ok):
    assert item_succeeded(state, rc, codes) is ok


EXP = {
    "policy": "on_failure",
    "max_retries": 4,
    "backoff": {
        "type": "exponential",
        "initial": 10,
        "max": 300,
        "multiplier": 2,
        "jitter": 0.1,
    },
}
LIN = {
    "policy": "on_failure",
    "max_retries": 3,
    "backoff": {"type": "linear", "interval": 60, "jitter": 0.0},
}


@pytest.mark.parametrize(
    ("policy", "attempt", "state", "rc", "u", "delay"),
    [
        (None, 1, "failed", 1, 0.5, None),
        ({"policy": "never"}, 1, "failed", 1, 0.5, None),
        ({"policy": "on_failure", "max_retries": 1}, 1, "failed", 1, 0.5, 0.0),
        ({"policy": "on_failure", "max_retries": 1}, 2, "failed", 1, 0.5, None),
        (EXP, 1, "failed", 1, 0.5, 10.0),
        (EXP, 3, "failed", 1, 0.5, 40.0),
        (EXP, 1, "failed", 1, 0.0, 9.0),  # jitter: -10%
        (EXP, 1, "failed", 1, 1.0, 11.0),  # +10%
        (EXP, 4, "timeout", 124, 0.5, 80.0),
        (EXP, 1, "cancelled", None, 0.5, None),
        (LIN, 2, "failed", 1, 0.9, 120.0),
        ({**LIN, "backoff": {**LIN["backoff"], "max": 90}}, 3, "failed", 1, 0.5, 90.0),
        ({**EXP, "retry_exit_codes": [75]}, 1, "failed", 1, 0.5, None),
        ({**EXP, "retry_exit_codes": [75]}, 1, "failed", 75, 0.5, 10.0),
        ({**EXP, "no_retry_exit_codes": [2]}, 1, "failed", 2, 0.5, None),
    ],
)
def test_retry_delay(policy, attempt, state, rc, u, delay):
    got = retry_delay_s(policy, attempt, state, rc, u)
    assert got == pytest.approx(delay) if delay is not None else got is None


def test_exponential_delays_are_capped():
    delays = [
        retry_delay_s({**EXP, "max_retries": 9}, n, "failed", 1, 0.5)
        for n in range(1, 8)
    ]
    assert delays == [10, 20, 40, 80, 160, 300, 300]


@pytest.mark.parametrize(
    ("completions", "succeeded", "failed", "strategy", "outcome"),
    [
        (1, 1, 0, "all_successful", "succeeded"),
        (1, 0, 1, "all_successful", "failed"),
        (4, 3, 0, "all_successful", None),
        (4, 4, 0, "all_successful", "succeeded"),
        (4, 2, 1, "all_successful", "failed"),
        (4, 0, 3, "any_successful", None),
        (4, 1, 3, "any_successful", "succeeded"),
        (4, 0, 4, "any_successful", "failed"),
    ],
)
def test_task_outcome(completions, succeeded, failed, strategy, outcome):
    assert task_outcome(completions, succeeded, failed, strategy) == outcome


@pytest.mark.parametrize(
    ("failed", "cancel", "state"),
    [(0, 0, "succeeded"), (2, 0, "failed"), (0, 1, "cancelled"), (1, 2, "timeout")],
)
def test_run_outcome(failed, cancel, state):
    assert run_outcome(failed, cancel) == state
