"""The pool's side of the resource policy, on its db thread: the inputs of
``policy.decide`` (the window, the namespaces' usage, quotas, the running jobs'
classes) and what it decided.

The policy (quotas, priority classes) is read from the db again only when a
definition changed (``policy_store.signature``: one small index read per
dispatch). Without quotas the window is the first ``lookahead`` pending jobs
in dispatch order; with quotas, the first jobs of each namespace
(``window.py``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from . import preemption
from .claims import ClaimedJob, note_unfit
from .classes import PriorityClass
from .db import Database
from .policy import Decision, PolicyConfig, Quota, RunningJob, Snapshot, decide
from .policy_store import Catalog, load_catalog, signature
from .scopes import SCOPE_SQL, scope_key, scoped
from .snapshot import Capacity, Preempt
from .window import Window, namespace_usage, ns_window, pending_window

__all__ = ["Dispatcher"]

logger = logging.getLogger("xqute.queue")


class Dispatcher:
    """Builds snapshots for ``decide`` and keeps the last decision."""

    def __init__(self, lookahead: int, config: PolicyConfig) -> None:
        self.lookahead = lookahead
        self.config = config
        self.catalog = Catalog()
        self.quotas: dict[str, Quota] = {}
        #: namespaces whose quota counts only some scopes (``scopes.py``)
        self.scopes: dict[str, tuple[str, ...]] = {}
        self._signature: tuple[Any, ...] | None = None
        self.last = Decision()
        #: preemptions and the earliest retry_at decided since the pool last
        #: took them (``take``)
        self._preempts: list[Preempt] = []
        self._retry_at: float | None = None
        #: the quota reasons written to waiting jobs (rewritten only on change)
        self._noted: dict[int, str] = {}

    def refresh(self, db: Database) -> None:
        """Re-read the policy if a definition changed since the last read."""
        sig = signature(db)
        if sig == self._signature:
            return
        self.catalog = load_catalog(db)
        self.quotas = {ns: q.to_quota() for ns, q in self.catalog.quotas.items()}
        self.scopes = scoped(self.catalog.quotas)
        self._signature = sig
        logger.info(
            "resource policy: %d quota(s), %d priority class(es)",
            len(self.quotas),
            len(self.catalog.priority_classes),
        )

    def class_of(self, cj: ClaimedJob) -> PriorityClass | None:
        name = cj.priority_class
        return None if name is None else self.catalog.priority_classes.get(name)

    def running_job(self, cj: ClaimedJob, terminating: bool) -> RunningJob:
        """What the policy needs to know of a job in flight."""
        pc = self.class_of(cj)
        base = dict(
            priority=cj.priority,
            started_at=cj.started_at or 0.0,
            gpus=cj.gpus,
            namespace=cj.namespace,
            storage_mb=cj.storage_mb,
            preemptions=cj.preemptions,
            terminating=terminating,
        )
        if pc is not None and pc.preemptible:
            base.update(
                preemptible=True,
                min_runtime_s=pc.min_runtime_s,
                max_preemptions=pc.max_preemptions,
            )
        return RunningJob(cj.id, cj.cpus, cj.mem_mb, cj.gpu_ids, cj.cpu_ids, **base)

    def victims_possible(self) -> bool:
        """Whether a running job could ever be preempted: then the pool asks
        the policy even when it has no free slot."""
        catalog = self.catalog
        return any(pc.preemptible for pc in catalog.priority_classes.values()) or any(
            q.cohort is not None for q in catalog.quotas.values()
        )

    def snapshot(
        self, db: Database, cap: Capacity, running: list[RunningJob], now: float
    ) -> Snapshot:
        """The policy's input (reads the db)."""
        if self.quotas:
            classes, scopes = self.catalog.priority_classes, self.scopes
            window = ns_window(db, self.lookahead, cap, classes, scopes)
            if scopes:
                running = rescope(db, running, scopes)
            return Snapshot(window, running, cap, now, self.quotas,
                            namespace_usage(db, scopes))  # fmt: skip
        classes = self.catalog.priority_classes
        window = pending_window(db, self.lookahead, cap, classes)
        return Snapshot(window, running, cap, now)

    def dispatch(
        self,
        db: Database,
        cap: Capacity,
        running: list[RunningJob],
        worker: str,
        refresh: bool = True,
    ) -> Decision:
        """Refresh the policy (``refresh``: a definition may have changed, as
        another connection committed), take a snapshot, decide, record the
        preemptions (db thread); the pool carries them out on its loop. It may
        run inside the caller's write transaction (its writes join it), and
        run again if that transaction is retried."""
        if refresh or self._signature is None:
            self.refresh(db)
        now = time.time()
        snap = self.snapshot(db, cap, running, now)
        try:
            self.last = decision = decide(snap, self.config)
            if decision.preempt:
                queued = {q.id: q for q in snap.queued}
        finally:
            if isinstance(snap.queued, Window):
                snap.queued.close()  # the window's statement ends here
        # (the same preemption decided again before the loop took it, or by a
        # retried transaction, is one preemption)
        self._preempts += [p for p in decision.preempt if p not in self._preempts]
        if decision.retry_at is not None:
            self._retry_at = min(decision.retry_at, self._retry_at or decision.retry_at)
        self._note_quota_waits(db, decision)
        if decision.preempt:
            preemption.record(
                db, worker, now, decision.preempt, {r.id: r for r in running}, queued
            )
        return decision

    def _note_quota_waits(self, db: Database, decision: Decision) -> None:
        """Say in their ``reason`` why jobs wait on their namespace's quota
        (``xqute status``); clear it when they wait for something else."""
        if not self.quotas and not self._noted:
            return
        now = {i: r for i, r in decision.waiting.items() if r.startswith("quota ")}
        changes: dict[int, str | None] = {
            i: r for i, r in now.items() if self._noted.get(i) != r
        }
        for i in self._noted:
            if i in decision.waiting and i not in now:
                changes[i] = None
        if changes:
            note_unfit(db, changes)  # type: ignore[arg-type]
        self._noted = now

    def take(self) -> tuple[list[Preempt], float | None]:
        """What the decisions since the last call ask the pool's loop to do:
        preempt these jobs, decide again at this time."""
        out = self._preempts, self._retry_at
        self._preempts, self._retry_at = [], None
        return out


def rescope(
    db: Database, running: list[RunningJob], scopes: dict[str, tuple[str, ...]]
) -> list[RunningJob]:
    """``running`` with the namespaces the policy sees (``scopes.py``)."""
    ids = [r.id for r in running if r.namespace in scopes]
    if not ids:
        return running
    marks = ",".join("?" * len(ids))
    sql = f"SELECT id, {SCOPE_SQL} FROM job_queue WHERE id IN ({marks})"
    kind = dict(db.query(sql, ids))
    out = []
    for r in running:
        if r.id in kind:
            r = dataclasses.replace(
                r, namespace=scope_key(r.namespace, kind[r.id], scopes)
            )
        out.append(r)
    return out
