"""``/metrics``: the queue's Prometheus metrics (``monitoring/metrics.py``) in
the text format a scraper asks for (Prometheus text, or OpenMetrics)."""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from ..monitoring.metrics import QueueCollector

__all__ = ["scrape"]

_lock = threading.Lock()


def registry_of(ctx: Any) -> CollectorRegistry:
    with _lock:
        if ctx.metrics is None:
            registry = CollectorRegistry(auto_describe=False)
            collector = QueueCollector(ctx.store)
            collector.events.start(collector.schema)  # count from now on
            collector.active.warm()  # a huge queue is counted before the 1st scrape
            registry.register(collector)
            ctx.metrics = registry
        return ctx.metrics


def scrape(ctx: Any, accept: str | None) -> tuple[bytes, str]:
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry_of(ctx)), content_type
