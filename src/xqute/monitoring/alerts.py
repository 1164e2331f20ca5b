"""Alert evaluation: a pure function of rules, samples, the alerts' state and the
time, like ``queue/policy.decide``.

The rule, as in Prometheus (one alert per rule and key: a namespace, a job, a
pool, a run, a schedule)::

    (no alert) --condition--> pending --held for `for`--> firing
        ^                        |                           |
        +---- condition gone ----+                           | condition gone
                                                             v
               condition again (a new incident) <----- resolved

- ``for: 0`` goes straight to firing. A pending alert whose condition goes away
  is dropped without a word; a firing one becomes resolved.
- Notifications: one per transition to firing and to resolved, for each of the
  rule's notifiers; while firing, one more each ``repeat_interval`` (the rule's,
  else the notifier's; none when neither is set).
- A rule whose samples are ``None`` (its data is not available: a table that is
  not there yet, a read that failed) keeps its alerts as they are: missing data
  never resolves anything.
- Resolved alerts are kept ``resolved_retention_s`` (history for ``xqute
  alerts`` and the dashboard), then forgotten.

Samples are computed by ``samples.py`` (the I/O side); this module only compares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .rules import AlertRule, NotifierSpec

__all__ = [
    "AlertState",
    "Evaluation",
    "Notification",
    "Sample",
    "Transition",
    "alert_payload",
    "evaluate",
]

PENDING, FIRING, RESOLVED = "pending", "firing", "resolved"
RESOLVED_RETENTION_S = 86400.0


@dataclass(frozen=True)
class Sample:
    """One observed value of a rule's metric for one key."""

    key: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)
    summary: str = ""


@dataclass(frozen=True)
class AlertState:
    """What is stored per (rule, key) in the ``alerts`` table."""

    rule: str
    key: str
    state: str
    since: float  # when it entered this state
    value: float
    active_at: float  # when the condition started to hold (this incident)
    labels: Mapping[str, str] = field(default_factory=dict)
    summary: str = ""
    fired_at: float | None = None
    resolved_at: float | None = None
    notified: Mapping[str, float] = field(default_factory=dict)  # notifier -> last


@dataclass(frozen=True)
class Transition:
    rule: str
    key: str
    old: str | None  # None: no alert before
    new: str | None  # None: dropped (pending that went away, or expired history)
    alert: AlertState | None


@dataclass(frozen=True)
class Notification:
    notifier: str
    kind: str  # firing | resolved | repeat
    alert: AlertState


@dataclass(frozen=True)
class Evaluation:
    states: dict[tuple[str, str], AlertState]
    transitions: list[Transition]
    notifications: list[Notification]


def evaluate(
    rules: Sequence[AlertRule],
    samples: Mapping[str, Sequence[Sample] | None],
    states: Mapping[tuple[str, str], AlertState],
    now: float,
    notifiers: Mapping[str, NotifierSpec] | None = None,
    resolved_retention_s: float = RESOLVED_RETENTION_S,
) -> Evaluation:
    """The new state of every alert, its transitions and the notifications due.

    ``samples[rule.name]``: that rule's observations (a key absent from them
    means the condition does not hold for it); ``None``: no data, keep as is.
    ``states``: the current alerts by (rule, key). Alerts of rules that no
    longer exist are dropped.
    """
    notifiers = notifiers or {}
    out: dict[tuple[str, str], AlertState] = {}
    transitions: list[Transition] = []
    notes: list[Notification] = []
    by_rule: dict[str, dict[str, AlertState]] = {}
    for (rule_name, key), st in states.items():
        by_rule.setdefault(rule_name, {})[key] = st
    names = {r.name for r in rules}
    for (rule_name, key), st in states.items():
        if rule_name not in names:
            transitions.append(Transition(rule_name, key, st.state, None, None))
    for rule in rules:
        current = by_rule.get(rule.name, {})
        observed = samples.get(rule.name)
        if observed is None:  # no data: nothing changes
            out.update({(rule.name, k): st for k, st in current.items()})
            continue
        breaking = {s.key: s for s in observed if rule.holds(s.value)}
        for key in sorted(set(current) | set(breaking)):
            st, sample = current.get(key), breaking.get(key)
            new = _step(rule, st, sample, now, resolved_retention_s)
            if new is not None:
                out[(rule.name, key)] = new
            old_state = st.state if st is not None else None
            new_state = new.state if new is not None else None
            if old_state != new_state:
                transitions.append(
                    Transition(rule.name, key, old_state, new_state, new)
                )
            if new is not None:
                new, due = _notify(rule, st, new, now, notifiers)
                out[(rule.name, key)] = new
                notes += due
    return Evaluation(out, transitions, notes)


def _step(
    rule: AlertRule,
    st: AlertState | None,
    sample: Sample | None,
    now: float,
    retention_s: float,
) -> AlertState | None:
    """The next state of one alert (None: no alert)."""
    if sample is None:  # the condition does not hold
        if st is None or st.state == PENDING:
            return None
        if st.state == FIRING:
            return replace(st, state=RESOLVED, since=now, resolved_at=now)
        return None if now - st.since >= retention_s else st  # resolved history
    seen = {
        "value": sample.value,
        "labels": dict(sample.labels),
        "summary": sample.summary,
    }
    if st is None or st.state == RESOLVED:  # a new incident
        fresh = AlertState(
            rule.name, sample.key, PENDING, now, active_at=now, notified={}, **seen
        )
        return _maybe_fire(rule, fresh, now)
    return _maybe_fire(rule, replace(st, **seen), now)


def _maybe_fire(rule: AlertRule, st: AlertState, now: float) -> AlertState:
    if st.state == PENDING and now - st.active_at >= rule.for_s:
        return replace(st, state=FIRING, since=now, fired_at=now, resolved_at=None)
    return st


def _notify(
    rule: AlertRule,
    old: AlertState | None,
    new: AlertState,
    now: float,
    notifiers: Mapping[str, NotifierSpec],
) -> tuple[AlertState, list[Notification]]:
    """The notifications due for one alert, and its state with them recorded."""
    old_state = old.state if old is not None else None
    if new.state == FIRING and old_state != FIRING:
        kind = "firing"
    elif new.state == RESOLVED and old_state == FIRING:
        kind = "resolved"
    elif new.state == FIRING:
        kind = "repeat"
    else:
        return new, []
    notified, due = dict(new.notified), []
    for name in rule.notify:
        if kind == "repeat":
            spec = notifiers.get(name)
            every = rule.repeat_interval_s or (spec.repeat_interval_s if spec else None)
            last = notified.get(name)
            if every is None or last is None or now - last < every:
                continue
        notified[name] = now
        due.append(name)
    if not due:
        return new, []
    final = replace(new, notified=notified)
    return final, [Notification(name, kind, final) for name in due]


def alert_payload(
    alert: AlertState, rule: AlertRule | None, kind: str | None = None
) -> dict[str, Any]:
    """The JSON every notifier gets (command stdin, webhook body, hook, event)."""
    data: dict[str, Any] = {
        "rule": alert.rule,
        "key": alert.key,
        "state": alert.state,
        "value": alert.value,
        "labels": dict(alert.labels),
        "summary": alert.summary,
        "since": alert.since,
        "active_at": alert.active_at,
        "fired_at": alert.fired_at,
        "resolved_at": alert.resolved_at,
    }
    if kind is not None:
        data["notification"] = kind
    if rule is not None:
        data.update(
            kind=rule.kind,
            severity=rule.severity,
            metric=rule.metric,
            op=rule.op,
            threshold=rule.threshold,
            for_s=rule.for_s,
            description=rule.description,
        )
    return data
