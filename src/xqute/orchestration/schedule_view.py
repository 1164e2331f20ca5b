"""What users read about schedules: the coming fire times with their DST notes
(``xqute schedule next``, ``Orchestrator.next_fires``), the catch-up summary
and the fields of ``xqute schedule list``. Pure functions over the row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..errors import ConfigError
from .cron import dst_note, get_zone, local_zone_name
from .schedule_store import ScheduleRow, to_dt
from .schedules import Cron, Every

__all__ = ["catchup_text", "display_zone", "next_fires", "row_view", "upcoming"]


def display_zone(schedule: Cron | Every) -> Any:
    """Where to show times: a cron schedule's own zone; this machine's zone
    for an interval (which has none)."""
    if isinstance(schedule, Cron):
        return get_zone(schedule.zone_name())
    return get_zone(local_zone_name())


#: the most fire times one listing computes (each is a cron evaluation)
MAX_SHOWN = 1000


def upcoming(
    schedule: Cron | Every, n: int, after: datetime
) -> list[tuple[datetime, str | None]]:
    """The next ``n`` fire times after ``after`` (aware, in ``display_zone``),
    each with a note where daylight saving time matters."""
    zone = display_zone(schedule)
    timeline = schedule.timeline()
    out: list[tuple[datetime, str | None]] = []
    t: datetime | None = after
    previous_offset = after.astimezone(zone).utcoffset()
    while len(out) < n:
        t = timeline.first_after(t)  # type: ignore[arg-type]
        if t is None:
            break
        local = t.astimezone(zone)
        if isinstance(schedule, Cron):
            note = dst_note(schedule.expr, zone, t)
        elif local.utcoffset() != previous_offset:
            before = (t - schedule.interval).astimezone(zone)  # type: ignore[operator]
            note = (
                f"clocks changed ({before:%Z} -> {local:%Z}): the interval keeps"
                " absolute time, so the local time moves"
            )
        else:
            note = None
        previous_offset = local.utcoffset()
        out.append((local, note))
    return out


def next_fires(
    db: Any, ref: str, n: int = 5, namespace: str = "default"
) -> list[datetime]:
    """``Orchestrator.next_fires``: the next ``n`` fire times of the schedule
    ``ref`` (from now, or from where it was settled if that is later)."""
    from .schedule_store import find

    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SHOWN:
        raise ConfigError(f"n={n!r} must be an integer from 1 to {MAX_SHOWN}")
    row = find(db, ref, namespace)
    after = max(datetime.now(UTC), to_dt(row.settled_until))
    return [t for t, _ in upcoming(row.schedule, n, after)]


def catchup_text(summary: dict[str, Any] | None, zone: Any, today: datetime) -> str:
    """``"missed 7, coalesced into 1 run at 10:07"`` from a schedule's
    ``last_catchup``; "" when there was none."""
    if not summary:
        return ""
    missed = summary.get("missed", 0)
    ran = summary.get("ran", 0)
    coalesced = summary.get("coalesced", 0)
    count = str(missed) if summary.get("exact", True) else f"more than {missed - 1}"
    parts = [f"missed {count}"]
    if summary.get("run_for") is not None and ran:
        at = to_dt(summary["run_for"]).astimezone(zone)
        same_day = at.date() == today.astimezone(zone).date()
        when = f"{at:%H:%M}" if same_day else f"{at:%Y-%m-%d %H:%M}"
        if ran == 1 and coalesced:
            parts.append(f"coalesced into 1 run at {when}")
        elif ran == 1:
            parts.append(f"ran 1 late (for {when})")
        else:
            parts.append(f"ran {ran} late, oldest first (the last for {when})")
    not_run = missed - ran - coalesced
    if not_run > 0 or (not ran and not coalesced):
        reasons = ", ".join(summary.get("reasons") or ()) or "missed"
        parts.append(
            f"{not_run} not run ({reasons})" if ran else f"none run ({reasons})"
        )
    return ", ".join(parts)


def row_view(row: ScheduleRow, now: datetime | None = None) -> dict[str, Any]:
    """A schedule as plain data (``xqute schedule list --json``); times ISO 8601
    in the schedule's display zone."""
    now = now or datetime.now(UTC)
    zone = display_zone(row.schedule)

    def iso(ts: float | None) -> str | None:
        return None if ts is None else to_dt(ts).astimezone(zone).isoformat()

    return {
        "id": row.id,
        "schedule": row.ref,
        "kind": row.kind,
        "namespace": row.namespace,
        "name": row.name,
        "spec": row.schedule.to_dict(),
        "describe": row.schedule.describe(),
        "suspended": row.suspended,
        "next_fire": None if row.suspended else iso(row.next_fire_at),
        "last_scheduled_for": iso(row.last_scheduled_for),
        "last_fired_at": iso(row.last_fired_at),
        "last_run_id": row.last_run_id,
        "fired": row.fired,
        "coalesced": row.coalesced,
        "missed": row.missed,
        "skipped": row.skipped,
        "waiting": len(row.backlog),
        "last_catchup": catchup_text(row.last_catchup, zone, now),
    }
