"""Cron expressions with Debian cron's semantics, evaluated in an IANA timezone.

The expression language and the DST rules are Debian cron's (``man 5 crontab``,
``man 8 cron``), evaluated by cronsim, which reproduces them (measured against
croniter in docs/schedules.md: croniter runs a 02:30 entry twice on a fall-back
night):

- 5 fields (minute hour day-of-month month day-of-week), ranges, steps, lists,
  names (``jan``, ``mon-fri``), 0 or 7 for Sunday, day-of-month OR day-of-week
  when neither starts with ``*``; ``@yearly`` ... ``@hourly``; cronsim's ``L``
  (last day of the month), ``5L`` (last Friday), ``MON#2`` and ``LW`` too.
- A *fixed-time* entry (neither minute nor hour starts with ``*``) whose time
  falls in the spring-forward gap runs once, right after the jump (02:30 ->
  03:00); in the fall-back overlap it runs once, at the first 02:30. Wildcard
  entries (``*/10 * * * *``, ``15 * * * *``) follow real time: nothing in the
  gap, both copies of the repeated hour.

``CronTimeline`` answers the two questions the fire decision asks, in UTC:
the first fire after a time, and the latest fire in a window, without
enumerating the fires in between (a galloping search: a 10-year window costs
~30 cronsim steps), so a long downtime never costs more than a few ms.
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

__all__ = [
    "ALIASES",
    "CronTimeline",
    "dst_note",
    "get_zone",
    "is_fixed_time",
    "local_zone_name",
    "normalize_cron",
]

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
FORMS = (
    "5 fields 'minute hour day-of-month month day-of-week' (e.g. '30 2 * * 1-5',"
    " '*/15 * * * *', '0 0 L * *') or one of " + ", ".join(ALIASES)
)
_SECOND = timedelta(seconds=1)


def normalize_cron(expr: str) -> str:
    """``expr`` as 5 space-separated fields (aliases expanded), validated.

    Raises ConfigError naming the bad field and the accepted forms."""
    from cronsim import CronSim, CronSimError

    if not isinstance(expr, str):
        raise ConfigError(f"cron expression {expr!r} must be a string; use {FORMS}")
    text = " ".join(expr.split())
    if text.startswith("@"):
        if text.lower() == "@reboot":
            raise ConfigError(
                "cron expression '@reboot' is not a time schedule; run the job"
                " when the daemon starts instead"
            )
        if text.lower() not in ALIASES:
            raise ConfigError(f"cron expression {expr!r} is not allowed; use {FORMS}")
        return ALIASES[text.lower()]
    parts = text.split(" ")
    if len(parts) != 5:
        hint = "; for seconds use Every('10s')" if len(parts) == 6 else ""
        raise ConfigError(
            f"cron expression {expr!r} has {len(parts) if text else 0} fields;"
            f" use {FORMS}{hint}"
        )
    try:
        CronSim(text, datetime(2000, 1, 1))
    except CronSimError as exc:  # "Bad minute": name the field's text too
        which = str(exc).removeprefix("Bad ").strip()
        index = FIELDS.index(which) if which in FIELDS else None
        where = f"{which} field {parts[index]!r}" if index is not None else str(exc)
        raise ConfigError(
            f"cron expression {expr!r}: bad {where}; use {FORMS}"
        ) from None
    return text


def is_fixed_time(expr: str) -> bool:
    """Debian's rule: an entry whose minute and hour fields do not start with
    ``*`` runs "at a particular time" and gets the DST adjustments."""
    minute, hour = expr.split()[:2]
    return not minute.startswith("*") and not hour.startswith("*")


@lru_cache(maxsize=256)
def get_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (system tzdata, else the ``tzdata`` package)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(name, str) or not name or name.startswith(("/", ".")):
        raise ConfigError(f"timezone {name!r} is not an IANA zone name (Area/City)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        import difflib
        from zoneinfo import available_timezones

        close = difflib.get_close_matches(name, sorted(available_timezones()), n=1)
        hint = (
            f"; did you mean {close[0]!r}?" if close else " (e.g. Europe/Berlin, UTC)"
        )
        raise ConfigError(f"timezone {name!r} is not an IANA zone name{hint}") from None


def local_zone_name() -> str:
    """This machine's zone as an IANA name: ``$TZ``, else what /etc/localtime
    links to, else /etc/timezone, else "UTC" (Debian cron uses local time)."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        target = str(Path("/etc/localtime").resolve())
        if "/zoneinfo/" in target:
            candidates.append(target.split("/zoneinfo/", 1)[1])
    except OSError:
        pass
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text().strip())
    for name in candidates:
        if name:
            try:
                get_zone(name)
            except ConfigError:
                continue
            return name
    return "UTC"


class CronTimeline:
    """The fire times of a (normalized) cron expression in ``zone``, in UTC."""

    def __init__(self, expr: str, zone: ZoneInfo) -> None:
        self.expr = expr
        self.zone = zone

    def first_after(self, t: datetime) -> datetime | None:
        """The first fire strictly after ``t`` (None: none within 50 years)."""
        from cronsim import CronSim

        it = CronSim(self.expr, t.astimezone(self.zone))
        # cronsim walks a fixed-time entry in naive local time: started inside
        # the repeated hour it may yield the first copy, already past
        for _ in range(4):
            try:
                fire = next(it).astimezone(UTC)
            except StopIteration:
                return None
            if fire > t:
                return fire
        return None  # pragma: no cover - cronsim moves a day per step here

    def latest_until(
        self, t: datetime, floor: datetime, hint: timedelta | None = None
    ) -> datetime | None:
        """The latest fire in ``(floor, t]``, or None.

        Searches instead of enumerating: ``hint`` (a likely gap between fires;
        by default the gap between the next two) is tried first, then a
        galloping search back from ``t`` and a bisection, at one-second
        resolution (cron fires on whole minutes)."""
        first = self.first_after(floor)
        if first is None or first > t:
            return None
        top = _whole_second(t)
        if hint is None:  # a regular schedule's gap before t is its gap after t
            upcoming = self.first_after(top)
            following = self.first_after(upcoming) if upcoming else None
            hint = following - upcoming if upcoming and following else None
        if hint is not None and hint > timedelta(0):
            guess = self.first_after(top - hint)
            if guess is not None and floor < guess <= t:
                after = self.first_after(guess)
                if after is None or after > t:
                    return guess
        low = _whole_second(floor)  # first_after(low) <= t
        high = top  # first_after(high) > t
        step = _SECOND
        probe = high - step
        while probe > low:  # gallop back from t until a fire <= t follows
            fire = self.first_after(probe)
            if fire is not None and fire <= t:
                low = probe
                break
            high = probe
            step *= 2
            probe = high - step
        while high - low > _SECOND:
            middle = low + _whole(high - low) / 2
            middle = _whole_second(middle)
            fire = self.first_after(middle)
            if fire is not None and fire <= t:
                low = middle
            else:
                high = middle
        return self.first_after(low)

    def count(self, floor: datetime, t: datetime, cap: int) -> tuple[int, bool]:
        """Fires in ``(floor, t]``, counted up to ``cap``: ``(n, True)``, or
        ``(cap + 1, False)`` for "more than cap" (never enumerates further)."""
        n = 0
        fire: datetime | None = floor
        while n <= cap:
            fire = self.first_after(fire)  # type: ignore[arg-type]
            if fire is None or fire > t:
                return n, True
            n += 1
        return n, False


def dst_note(expr: str, zone: ZoneInfo, fire: datetime) -> str | None:
    """Why ``fire`` (a fire time of ``expr``) is special for daylight saving
    time, in words for ``xqute schedule next``; None when it is not."""
    local = fire.astimezone(zone)
    before = (fire - _SECOND).astimezone(zone)
    wall_step = local.replace(tzinfo=None) - before.replace(tzinfo=None)
    if wall_step > _SECOND and is_fixed_time(expr):  # right after a forward jump
        from cronsim import CronSim

        gap_start = before.replace(tzinfo=None)
        wanted = next(CronSim(expr, gap_start))  # naive: what the entry asks for
        if wanted < local.replace(tzinfo=None):
            return (
                f"{wanted:%H:%M} does not exist that day (clocks go forward at"
                f" {gap_start + _SECOND:%H:%M}): runs once, at {local:%H:%M %Z}"
            )
    twin = _other_fold(local)
    if twin is not None:
        first = local.fold == 0 and local.utcoffset() != twin.utcoffset()
        if is_fixed_time(expr):
            return (
                f"{local:%H:%M} happens twice that night (clocks go back):"
                f" runs once, at the first ({local:%Z})"
            )
        which = "first" if first else "second"
        return (
            f"clocks go back: the {which} {local:%H:%M} ({local:%Z}) of two;"
            " wildcard entries run in both"
        )
    return None


def _other_fold(local: datetime) -> datetime | None:
    """The same wall time with the other fold, if it is a different instant."""
    twin = local.replace(fold=1 - local.fold)
    return twin if twin.utcoffset() != local.utcoffset() else None


def _whole_second(t: datetime) -> datetime:
    return t.replace(microsecond=0)


def _whole(delta: timedelta) -> timedelta:
    return timedelta(seconds=int(delta.total_seconds()))
