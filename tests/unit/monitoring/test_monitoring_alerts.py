"""alerts.evaluate: the alert state machine on plain data, table-driven."""

from __future__ import annotations

import pytest

from xqute.monitoring.alerts import AlertState, Sample, alert_payload, evaluate
from xqute.monitoring.rules import AlertRule, NotifierSpec

RULE = AlertRule(
    "backlog", "queue_threshold", "queue_length", ">", 10, for_s=60, notify=("ops",)
)
NOW_RULE = AlertRule("slow", "job_timeout", "job_runtime", ">", 3600, notify=("ops",))
OPS = {"ops": NotifierSpec("ops", command=("true",))}


def st(state, since=0.0, active_at=0.0, value=11.0, key="all", rule="backlog", **kw):
    return AlertState(rule, key, state, since, value, active_at, **kw)


def run(rule, samples, states, now, notifiers=OPS):
    states = {(s.rule, s.key): s for s in states}
    return evaluate([rule], {rule.name: samples}, states, now, notifiers)


# (case, rule, samples, states before, now, state after or None, notifications)
CASES = [
    ("below threshold: nothing", RULE, [Sample("all", 10)], [], 0, None, []),
    ("above: pending", RULE, [Sample("all", 11)], [], 0, "pending", []),
    (
        "pending, not long enough",
        RULE,
        [Sample("all", 11)],
        [st("pending")],
        59,
        "pending",
        [],
    ),
    (
        "pending held for `for`: firing",
        RULE,
        [Sample("all", 12)],
        [st("pending")],
        60,
        "firing",
        ["firing"],
    ),
    (
        "pending, condition gone: dropped silently",
        RULE,
        [Sample("all", 3)],
        [st("pending")],
        30,
        None,
        [],
    ),
    ("pending, key absent: dropped", RULE, [], [st("pending")], 30, None, []),
    (
        "for 0: straight to firing",
        NOW_RULE,
        [Sample("7", 4000)],
        [],
        5,
        "firing",
        ["firing"],
    ),
    (
        "firing stays firing, no repeat set: quiet",
        RULE,
        [Sample("all", 50)],
        [st("firing", 60, notified={"ops": 60.0})],
        5000,
        "firing",
        [],
    ),
    (
        "firing, condition gone: resolved + notified",
        RULE,
        [Sample("all", 1)],
        [st("firing", 60, notified={"ops": 60.0})],
        100,
        "resolved",
        ["resolved"],
    ),
    ("resolved stays (history)", RULE, [], [st("resolved", 100)], 200, "resolved", []),
    (
        "resolved expires after a day",
        RULE,
        [],
        [st("resolved", 100)],
        100 + 86400,
        None,
        [],
    ),
    (
        "resolved, condition again: a new incident, pending",
        RULE,
        [Sample("all", 99)],
        [st("resolved", 100)],
        300,
        "pending",
        [],
    ),
    (
        "no data (None) keeps a firing alert",
        RULE,
        None,
        [st("firing", 60)],
        999,
        "firing",
        [],
    ),
    (
        "operator <",
        AlertRule("low", "queue_threshold", "queue_length", "<", 1, notify=("ops",)),
        [Sample("all", 0)],
        [],
        0,
        "firing",
        ["firing"],
    ),
]


@pytest.mark.parametrize(
    "rule,samples,before,now,after,notes",
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_transitions(rule, samples, before, now, after, notes):
    if before:
        before = [AlertState(rule.name, *_rest(b)) for b in before]
    result = run(rule, samples, before, now)
    got = [s.state for s in result.states.values()]
    assert got == ([after] if after else [])
    assert [n.kind for n in result.notifications] == notes


def _rest(state: AlertState):
    return (
        state.key,
        state.state,
        state.since,
        state.value,
        state.active_at,
        state.labels,
        state.summary,
        state.fired_at,
        state.resolved_at,
        state.notified,
    )


def test_pending_keeps_its_start_and_fires_after_for_from_the_first_breach():
    states = {}
    fired_at = None
    for now in range(0, 200, 10):
        result = evaluate([RULE], {"backlog": [Sample("all", 11)]}, states, now, OPS)
        states = result.states
        if result.notifications:
            fired_at = now
            break
    assert fired_at == 60
    alert = states[("backlog", "all")]
    assert (alert.active_at, alert.fired_at, alert.since) == (0, 60, 60)


def test_repeat_interval_of_the_notifier_and_of_the_rule():
    ops = {"ops": NotifierSpec("ops", command=("true",), repeat_interval_s=100)}
    firing = st("firing", 60, notified={"ops": 60.0})
    states = {("backlog", "all"): firing}

    def notes_at(now, rule=RULE, notifiers=ops):
        result = evaluate(
            [rule], {"backlog": [Sample("all", 50)]}, states, now, notifiers
        )
        return [n.kind for n in result.notifications], result.states

    assert notes_at(159)[0] == []
    kinds, after = notes_at(160)
    assert kinds == ["repeat"]
    assert after[("backlog", "all")].notified == {"ops": 160}
    # the rule's own interval wins over the notifier's
    from dataclasses import replace

    assert notes_at(100, replace(RULE, repeat_interval_s=30))[0] == ["repeat"]
    assert notes_at(5000, notifiers=OPS)[0] == []  # no interval anywhere


def test_one_notification_per_notifier_and_transitions_listed():
    rule = AlertRule(
        "r", "worker_down", "worker_heartbeat_age", ">", 60, notify=("a", "b")
    )
    notifiers = {n: NotifierSpec(n, webhook="http://x") for n in "ab"}
    result = evaluate(
        [rule], {"r": [Sample("pool-1", 90), Sample("pool-2", 5)]}, {}, 10, notifiers
    )
    assert [(n.notifier, n.kind, n.alert.key) for n in result.notifications] == [
        ("a", "firing", "pool-1"),
        ("b", "firing", "pool-1"),
    ]
    assert [(t.key, t.old, t.new) for t in result.transitions] == [
        ("pool-1", None, "firing")
    ]
    # evaluating again at once changes nothing and says nothing
    again = evaluate(
        [rule], {"r": [Sample("pool-1", 91)]}, result.states, 11, notifiers
    )
    assert again.notifications == [] and again.transitions == []
    assert again.states[("r", "pool-1")].value == 91


def test_alerts_of_a_deleted_rule_are_dropped():
    old = {("gone", "all"): AlertState("gone", "all", "firing", 0, 1, 0)}
    result = evaluate([RULE], {"backlog": []}, old, 10, OPS)
    assert result.states == {}
    assert [(t.rule, t.old, t.new) for t in result.transitions] == [
        ("gone", "firing", None)
    ]


def test_keys_are_independent():
    samples = [Sample("team-a", 20), Sample("team-b", 5)]
    rule = AlertRule("q", "queue_threshold", "queue_length", ">", 10)
    result = evaluate([rule], {"q": samples}, {}, 0)
    assert {k: s.state for k, s in result.states.items()} == {("q", "team-a"): "firing"}


def test_payload_carries_rule_and_alert():
    result = run(NOW_RULE, [Sample("7", 4000, {"namespace": "a"}, "job 7 runs")], [], 5)
    payload = alert_payload(result.notifications[0].alert, NOW_RULE, "firing")
    assert payload["rule"] == "slow" and payload["key"] == "7"
    assert payload["state"] == "firing" and payload["notification"] == "firing"
    assert payload["threshold"] == 3600 and payload["labels"] == {"namespace": "a"}
    assert payload["summary"] == "job 7 runs"
