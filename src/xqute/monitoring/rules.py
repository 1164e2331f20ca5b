"""The ``monitoring:`` block of an xqute.yaml: the HTTP listener, alert rules and
notifiers, parsed into frozen plain data (what ``alerts.evaluate`` takes).

```yaml
monitoring:
  http: {listen: "127.0.0.1:8765", token_file: ~/.config/xqute/token}
  evaluation_interval: 10s
  alerts:
    queue_threshold: 100          # seed shorthand: pending > 100
    job_timeout: 1h               # seed shorthand: a job running longer than 1 h
    rules:
      - {name: backlog-a, when: "queue_length > 100", for: 5m, namespace: team-a}
      - {name: failing, when: "job_failure_rate > 0.2", window: 10m, min_jobs: 5}
      - {name: nightly-late, when: workflow_deadline, workflow: data-pipeline,
         reference: scheduled_for, interval: 2h, notify: [ops]}
      - {name: missed, when: schedule_missed}
      - {name: pool-down, when: "worker_heartbeat_age > 60"}
  notifiers:
    ops: {command: [notify-send, xqute], repeat_interval: 1h}   # alert JSON on stdin
    hook: {webhook: "http://127.0.0.1:9000/alerts"}
```

Every problem raises ``ConfigError`` naming where it is (``monitoring.alerts
.rules[2].when``) and what is allowed. A rule without ``notify`` notifies every
notifier; every transition also goes to the plugin hook ``on_alert`` and the
event stream.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import checks
from ..errors import ConfigError
from .listen import HttpConfig, parse_http
from .values import (
    check_mapping,
    check_name,
    duration,
    number,
    opt_duration,
    opt_str,
)

__all__ = [
    "KINDS",
    "AlertRule",
    "HttpConfig",
    "MonitoringConfig",
    "NotifierSpec",
    "parse_http",
    "parse_monitoring",
]

#: metric a rule compares -> the rule's kind
METRICS = {
    "queue_length": "queue_threshold",
    "job_runtime": "job_timeout",
    "job_failure_rate": "job_failure_rate",
    "worker_heartbeat_age": "worker_down",
    "schedule_lateness": "schedule_late",
}
#: kinds whose condition is built in (no comparison in ``when``)
EVENT_KINDS = ("workflow_deadline", "schedule_missed")
KINDS = (*METRICS.values(), *EVENT_KINDS)
OPS = (">", ">=", "<", "<=")
SEVERITIES = ("info", "warning", "critical")
_WHEN_RE = re.compile(r"^\s*([a-z_]+)\s*(?:(>=|<=|>|<)\s*(\S+))?\s*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_RULE_KEYS = {
    "name",
    "when",
    "for",
    "namespace",
    "workflow",
    "schedule",
    "window",
    "min_jobs",
    "interval",
    "reference",
    "notify",
    "repeat_interval",
    "severity",
    "description",
}
_NOTIFIER_KEYS = {"command", "webhook", "timeout", "repeat_interval", "headers"}
_TOP_KEYS = {"http", "metrics", "alerts", "notifiers", "evaluation_interval"}


@dataclass(frozen=True)
class AlertRule:
    """One alert rule: ``metric op threshold`` held for ``for_s`` fires it."""

    name: str
    kind: str
    metric: str | None = None
    op: str = ">"
    threshold: float = 0.0
    for_s: float = 0.0
    namespace: str | None = None
    workflow: str | None = None
    schedule: str | None = None
    window_s: float = 600.0  # job_failure_rate, schedule_missed
    min_jobs: int = 5  # job_failure_rate: fewer ended jobs say nothing
    reference: str = "created_at"  # workflow_deadline: created_at | scheduled_for
    notify: tuple[str, ...] = ()
    repeat_interval_s: float | None = None  # per rule; else each notifier's own
    severity: str = "warning"
    description: str = ""

    def holds(self, value: float) -> bool:
        """Whether ``value`` breaks the rule."""
        op = self.op
        if op == ">":
            return value > self.threshold
        if op == ">=":
            return value >= self.threshold
        if op == "<":
            return value < self.threshold
        return value <= self.threshold


@dataclass(frozen=True)
class NotifierSpec:
    """Where notifications go: a command (alert JSON on stdin) or a webhook."""

    name: str
    command: tuple[str, ...] = ()
    webhook: str | None = None
    timeout_s: float = 30.0
    repeat_interval_s: float | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class MonitoringConfig:
    http: HttpConfig | None = None
    rules: tuple[AlertRule, ...] = ()
    notifiers: Mapping[str, NotifierSpec] = field(default_factory=dict)
    evaluation_interval_s: float = 10.0
    #: the block is the applied definition (``xqute apply``): the daemon
    #: follows its new versions (``applied.py``)
    follow_applied: bool = False
    applied_version: int | None = None


def parse_monitoring(data: Any, where: str = "monitoring") -> MonitoringConfig:
    """The ``monitoring:`` block (a mapping) -> ``MonitoringConfig``."""
    if data is None:
        return MonitoringConfig()
    check_mapping(data, where, _TOP_KEYS)
    http = parse_http(data["http"], f"{where}.http") if data.get("http") else None
    interval = duration(
        data.get("evaluation_interval", 10), f"{where}.evaluation_interval"
    )
    notifiers = _notifiers(data.get("notifiers") or {}, f"{where}.notifiers")
    rules = _rules(data.get("alerts") or {}, f"{where}.alerts", notifiers)
    return MonitoringConfig(http, rules, notifiers, interval)


# ---------------------------------------------------------------------- parts
def _notifiers(data: Any, where: str) -> dict[str, NotifierSpec]:
    check_mapping(data, where)
    out = {}
    for name, spec in data.items():
        here = f"{where}.{name}"
        check_name(name, here)
        check_mapping(spec, here, _NOTIFIER_KEYS)
        command, webhook = spec.get("command"), spec.get("webhook")
        if (command is None) == (webhook is None):
            raise ConfigError(f"{here} needs exactly one of 'command' or 'webhook'")
        argv: tuple[str, ...] = ()
        if command is not None:
            if isinstance(command, str) or not isinstance(command, Sequence):
                raise ConfigError(
                    f"{here}.command {command!r} must be a list of arguments,"
                    " e.g. [notify-send, xqute]"
                )
            argv = tuple(str(a) for a in command)
            if not argv or not argv[0]:
                raise ConfigError(f"{here}.command must not be empty")
        if webhook is not None and not (
            isinstance(webhook, str) and webhook.startswith(("http://", "https://"))
        ):
            raise ConfigError(f"{here}.webhook {webhook!r} must be an http(s) URL")
        headers = spec.get("headers") or {}
        check_mapping(headers, f"{here}.headers")
        out[name] = NotifierSpec(
            name=name,
            command=argv,
            webhook=webhook,
            timeout_s=duration(spec.get("timeout", 30), f"{here}.timeout"),
            repeat_interval_s=opt_duration(
                spec.get("repeat_interval"), f"{here}.repeat_interval"
            ),
            headers=tuple((str(k), str(v)) for k, v in headers.items()),
        )
    return out


def _rules(
    data: Any, where: str, notifiers: Mapping[str, NotifierSpec]
) -> tuple[AlertRule, ...]:
    check_mapping(data, where, {"queue_threshold", "job_timeout", "rules"})
    items: list[tuple[str, Any]] = []
    if data.get("queue_threshold") is not None:
        limit = number(data["queue_threshold"], f"{where}.queue_threshold")
        rule = {"name": "queue_threshold", "when": f"queue_length > {limit}"}
        items.append((f"{where}.queue_threshold", rule))
    if data.get("job_timeout") is not None:
        limit = duration(data["job_timeout"], f"{where}.job_timeout")
        rule = {"name": "job_timeout", "when": f"job_runtime > {limit}"}
        items.append((f"{where}.job_timeout", rule))
    listed = data.get("rules") or []
    if not isinstance(listed, list):
        raise ConfigError(f"{where}.rules must be a list of rules")
    items += [(f"{where}.rules[{i}]", r) for i, r in enumerate(listed)]
    rules: list[AlertRule] = []
    for here, spec in items:
        rule = _rule(spec, here, notifiers)
        if any(r.name == rule.name for r in rules):
            raise ConfigError(f"{here}: a rule named {rule.name!r} is defined twice")
        rules.append(rule)
    return tuple(rules)


def _rule(spec: Any, where: str, notifiers: Mapping[str, NotifierSpec]) -> AlertRule:
    check_mapping(spec, where, _RULE_KEYS)
    name = spec.get("name")
    check_name(name, f"{where}.name")
    when = spec.get("when")
    match = _WHEN_RE.match(when) if isinstance(when, str) else None
    allowed = [f"{m} > N" for m in METRICS] + list(EVENT_KINDS)
    if not match:
        raise ConfigError.choice(f"{where}.when", when, allowed)
    word, op, value = match.groups()
    kw: dict[str, Any] = {}
    if word in METRICS and op:
        kind = METRICS[word]
        kw.update(metric=word, op=op)
        if word in ("queue_length", "job_failure_rate"):
            kw["threshold"] = number(value, f"{where}.when")
        else:  # seconds; "1h" is fine too
            kw["threshold"] = duration(value, f"{where}.when")
    elif word in EVENT_KINDS and not op:
        kind = word
    else:
        raise ConfigError.choice(f"{where}.when", when, allowed)
    if kind == "workflow_deadline":
        if spec.get("interval") is None:
            raise ConfigError(f"{where}.interval is required for workflow_deadline")
        kw["threshold"] = duration(spec["interval"], f"{where}.interval")
        reference = spec.get("reference", "created_at")
        if reference not in ("created_at", "scheduled_for"):
            raise ConfigError.choice(
                f"{where}.reference", reference, ["created_at", "scheduled_for"]
            )
        kw["reference"] = reference
    elif spec.get("interval") is not None or spec.get("reference") is not None:
        raise ConfigError(f"{where}: interval/reference are for workflow_deadline")
    if "window" in spec:
        kw["window_s"] = duration(spec["window"], f"{where}.window")
    elif kind == "schedule_missed":
        kw["window_s"] = 3600.0
    if "min_jobs" in spec:
        kw["min_jobs"] = checks.positive_int(f"{where}.min_jobs", spec["min_jobs"])
    notify = spec.get("notify")
    if notify is None:
        names = tuple(notifiers)
    elif isinstance(notify, list) and all(isinstance(n, str) for n in notify):
        names = tuple(notify)
        for n in names:
            if n not in notifiers:
                raise ConfigError.choice(
                    f"{where}.notify", n, list(notifiers) or ["<none>"]
                )
    else:
        raise ConfigError(f"{where}.notify {notify!r} must be a list of notifier names")
    severity = spec.get("severity", "warning")
    if severity not in SEVERITIES:
        raise ConfigError.choice(f"{where}.severity", severity, SEVERITIES)
    for key in ("namespace", "workflow", "schedule", "description"):
        if spec.get(key) is not None:
            kw[key] = opt_str(spec[key], f"{where}.{key}")
    return AlertRule(
        name=name,
        kind=kind,
        for_s=opt_duration(spec.get("for"), f"{where}.for", zero=True) or 0.0,
        notify=names,
        repeat_interval_s=opt_duration(
            spec.get("repeat_interval"), f"{where}.repeat_interval"
        ),
        severity=severity,
        **kw,
    )
