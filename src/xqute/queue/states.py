"""``QueueState``: a queue job's state names (``job_queue.state``).

A module of its own, importing only ``enum``: the queue's schema, which every
``xqute submit`` imports, needs these names and nothing else of the job
vocabularies in ``status.py`` (whose three other enums cost that command
~0.5 ms to build). ``status`` and ``outcome`` re-export it; ``outcome.py``
maps it to the engine's vocabularies.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["QueueState"]


class QueueState(StrEnum):
    """A queue job's state (``job_queue.state``; the seed's names)."""

    PENDING = "pending"
    WAITING = "waiting"  # eligible later (a retry's backoff, a schedule)
    HELD = "held"  # suspended
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
