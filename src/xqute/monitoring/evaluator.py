"""The daemon's alert loop: every ``evaluation_interval`` it reads the samples,
runs the pure ``alerts.evaluate``, commits the result with its notifications
(``alert_store.save``), then delivers what is due from the outbox.

Transitions to firing and resolved also go to the plugin hook ``on_alert`` and,
when the db has the ``events`` table, to the event stream (``alert.pending``,
``alert.firing``, ``alert.resolved``) in the same transaction as the state.
Runs on the daemon's event loop; db work happens in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace
from typing import Any

from ..errors import ConfigError
from ..queue.db import Database
from . import alert_store
from .alerts import Evaluation, alert_payload, evaluate
from .applied import applied_block
from .notify import deliver
from .rules import MonitoringConfig, parse_monitoring
from .samples import collect

__all__ = ["AlertEvaluator"]

logger = logging.getLogger("xqute.monitoring")


class AlertEvaluator:
    """Evaluates ``config``'s rules against ``db`` until stopped."""

    def __init__(
        self, db: Database, config: MonitoringConfig, hooks: Any = None
    ) -> None:
        self.db = db
        self.config = config
        self.rules = {r.name: r for r in config.rules}
        self.hooks = hooks  # a HookCaller (on_alert), or None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self.evaluations = 0

    # ------------------------------------------------------------------ one step
    def evaluate_once(self, now: float | None = None) -> Evaluation:
        """Sample, evaluate and commit (sync: call it in a thread)."""
        now = time.time() if now is None else now
        rules = self.config.rules
        samples = collect(self.db, rules, now)
        result = evaluate(
            rules, samples, alert_store.load(self.db), now, self.config.notifiers
        )
        payloads = [
            (n, alert_payload(n.alert, self.rules.get(n.alert.rule), n.kind))
            for n in result.notifications
        ]
        events = [
            (
                f"alert.{t.new or 'inactive'}",
                alert_payload(t.alert, self.rules.get(t.rule)),
            )
            for t in result.transitions
            if t.alert is not None
        ]
        alert_store.save(self.db, result, payloads, now, events)
        self.evaluations += 1
        return result

    async def deliver_due(self) -> int:
        """Deliver the outbox rows that are due; how many were delivered."""
        items = await asyncio.to_thread(alert_store.claim_due, self.db)
        sent = 0
        for item in items:
            spec = self.config.notifiers.get(item.notifier)
            if spec is None:  # the notifier was removed from the config
                await asyncio.to_thread(alert_store.done, self.db, item.id)
                continue
            error = await deliver(spec, item.payload)
            if error is None:
                await asyncio.to_thread(alert_store.done, self.db, item.id)
                sent += 1
                continue
            retried = await asyncio.to_thread(alert_store.failed, self.db, item, error)
            logger.warning(
                "alert %s/%s to %s: %s%s",
                item.payload.get("rule"),
                item.payload.get("key"),
                item.notifier,
                error,
                "" if retried else " (given up)",
            )
        return sent

    def follow(self) -> None:
        """Take a new version of the applied monitoring block (sync)."""
        if not self.config.follow_applied:
            return
        found = applied_block(self.db)
        version = found[0] if found is not None else None
        if version == self.config.applied_version:
            return
        try:
            new = parse_monitoring(found[1] if found else None)
        except ConfigError as exc:  # stored by another xqute: keep what runs
            logger.warning("monitoring v%s not taken: %s", version, exc)
            new = self.config
        self.config = replace(
            new, http=self.config.http, follow_applied=True, applied_version=version
        )
        self.rules = {r.name: r for r in self.config.rules}
        logger.info("alert rules: monitoring v%s (%d rules)", version, len(self.rules))

    async def tick(self) -> None:
        await asyncio.to_thread(self.follow)
        result = await asyncio.to_thread(self.evaluate_once)
        for t in result.transitions:
            if t.new in ("firing", "resolved") and t.alert is not None:
                logger.info("alert %s/%s %s: %s", t.rule, t.key, t.new, t.alert.summary)
                await self._call_hook(
                    alert_payload(t.alert, self.rules.get(t.rule), t.new)
                )
        await self.deliver_due()

    async def _call_hook(self, payload: dict[str, Any]) -> None:
        if self.hooks is None or not self.hooks.implements("on_alert"):
            return
        try:
            await self.hooks.acall("on_alert", payload)
        except Exception as exc:  # a plugin's failure must not stop the alerts
            logger.warning("on_alert hook: %s", exc)

    # ------------------------------------------------------------------ loop
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="xqute-alerts")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self._stop.is_set():
            interval = self.config.evaluation_interval_s
            try:
                await self.tick()
            except Exception:  # logged; the next round tries again
                logger.exception("alert evaluation failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), interval)
