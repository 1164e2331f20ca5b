"""How the queue verbs show jobs and workers: times, sizes, states."""

from __future__ import annotations

import time
from typing import Any

STATE_STYLES = {
    "pending": "yellow",
    "running": "cyan",
    "completed": "green",
    "failed": "red",
    "timeout": "magenta",
    "cancelled": "dim",
}


def when(ts: float | None, now: float | None = None) -> str:
    """``14:03:22`` today, ``11-20 14:03`` another day, ``-`` never."""
    if ts is None:
        return "-"
    now = time.time() if now is None else now
    then = time.localtime(ts)
    if time.localtime(now)[:3] == then[:3]:
        return time.strftime("%H:%M:%S", then)
    return time.strftime("%m-%d %H:%M", then)


def duration(seconds: float | None) -> str:
    """``0:00:07``, ``1:02:03``, ``2-03:00:00`` (like squeue's TIME)."""
    if seconds is None:
        return "-"
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{days}-{text}" if days else text


def elapsed(job: dict[str, Any], now: float | None = None) -> str:
    start = job.get("started_at")
    if start is None:
        return "-"
    end = job.get("ended_at") or (time.time() if now is None else now)
    return duration(end - start)


def mem(mb: int | None) -> str:
    if not mb:
        return "-"
    if mb >= 1024 * 1024 * 1024:
        return "unlimited"
    if mb % 1024 == 0:
        return f"{mb // 1024}G"
    if mb >= 10 * 1024:
        return f"{mb / 1024:.1f}G"
    return f"{mb}M"


def state(job: dict[str, Any]) -> str:
    text = job["state"]
    if job.get("cancel_requested") and text == "running":
        text = "cancelling"
    style = STATE_STYLES.get(job["state"], "")
    return f"[{style}]{text}[/]" if style else text


def shorten(text: str | None, width: int = 40) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
