"""Monitoring: alert rules and their pure evaluation, the samples they read
from the queue db, notifiers, and the Prometheus metrics the daemon exports.

``rules`` and ``alerts`` import nothing heavy; ``metrics`` needs
prometheus-client (the ``web`` extra) and is imported only by the HTTP server.
"""

from __future__ import annotations

from .alerts import AlertState, Evaluation, Notification, Sample, Transition, evaluate
from .rules import (
    AlertRule,
    HttpConfig,
    MonitoringConfig,
    NotifierSpec,
    parse_http,
    parse_monitoring,
)

__all__ = [
    "AlertRule",
    "AlertState",
    "Evaluation",
    "HttpConfig",
    "MonitoringConfig",
    "Notification",
    "NotifierSpec",
    "Sample",
    "Transition",
    "evaluate",
    "parse_http",
    "parse_monitoring",
]
