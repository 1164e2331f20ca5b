"""Retry backoff: exponential, capped, with jitter (shared by engine and queue).

Jitter keeps a thousand jobs that failed together (a full disk, a flapping
controller) from coming back together.
"""

from __future__ import annotations

import random

from . import checks

__all__ = ["backoff_delay_s", "check_backoff"]


def check_backoff(base_s: float, max_s: float) -> None:
    checks.seconds("retry_backoff_s", base_s, zero_ok=True)
    checks.seconds("retry_backoff_max_s", max_s, zero_ok=True)


def backoff_delay_s(
    retry: int, base_s: float, max_s: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait before retry number ``retry`` (1, 2, ...).

    ``base_s * 2**(retry-1)``, capped at ``max_s``, then drawn uniformly from the
    upper half of that ("equal jitter"); 0 when ``base_s`` is 0.
    """
    if base_s <= 0 or retry < 1:
        return 0.0
    cap = min(max_s, base_s * 2.0 ** min(retry - 1, 62))
    return cap / 2 + (rng or random).uniform(0, cap / 2)
