"""``Cron`` and ``Every``: when a job or workflow runs, and what happens to the
runs its schedule misses or that would overlap.

```python
Cron("0 0 * * *", timezone="Europe/Berlin")      # Debian cron, in that zone
Every("6h")                                      # 00:00, 06:00 ... UTC
Every("90s", anchor="2026-01-01T00:00:30Z")      # absolute, from the anchor
```

Both carry the same policies (see fires.py for the rules):

- ``missed_runs``: ``"once"`` (default: one run for the latest missed time, the
  others recorded as coalesced), ``"all"`` (one run per missed time, oldest
  first, at most ``max_catchup``: the newest ones; older ones recorded missed),
  ``"skip"`` (none; recorded missed).
- ``starting_deadline``: a time older than this when it could run is missed.
- ``concurrency`` when the previous run is still active: ``"allow"``,
  ``"forbid"`` (record a skip; with ``missed_runs="all"`` the fire waits its
  turn instead), ``"replace"`` (cancel the active run, then start).

An interval is absolute, unaffected by DST: ``Every("1d")`` is 24 hours apart
even across a clock change (use ``Cron`` for "09:00 local time"). Without an
anchor, intervals are aligned to the Unix epoch, so ``Every("6h")`` fires at
00, 06, 12 and 18 UTC whenever it was created.

These are plain frozen dataclasses (no pydantic), importable on fast paths;
cronsim is imported only to check or evaluate a cron expression.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import ConfigError
from ..units import parse_duration_s

__all__ = [
    "CONCURRENCY",
    "DEFAULT_MAX_CATCHUP",
    "MISSED_RUNS",
    "Cron",
    "Every",
    "EveryTimeline",
    "Schedule",
    "coerce_schedule",
    "dump_schedule",
    "schedule_from_dict",
]

MISSED_RUNS = ("once", "all", "skip")
CONCURRENCY = ("allow", "forbid", "replace")
DEFAULT_MAX_CATCHUP = 10
#: the most missed fires one catch-up computes and queues (each a run)
MAX_CATCHUP = 10_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_INTERVAL = timedelta(seconds=1)


class _Policies:
    """What ``Cron`` and ``Every`` share: the policy fields' checks and views."""

    __slots__ = ()
    missed_runs: str
    starting_deadline: float | None
    concurrency: str
    max_catchup: int

    def _check_policies(self) -> None:
        if self.missed_runs not in MISSED_RUNS:
            raise _at("missed_runs", ConfigError.choice(
                "missed_runs", self.missed_runs, MISSED_RUNS))  # fmt: skip
        if self.concurrency not in CONCURRENCY:
            raise _at("concurrency", ConfigError.choice(
                "concurrency", self.concurrency, CONCURRENCY))  # fmt: skip
        if self.starting_deadline is not None:
            _set(self, "starting_deadline",
                 _seconds(self.starting_deadline, "starting_deadline"))  # fmt: skip
        catchup = self.max_catchup
        if (
            isinstance(catchup, bool)
            or not isinstance(catchup, int)
            or not 1 <= catchup <= MAX_CATCHUP
        ):
            raise _at("max_catchup", ConfigError(
                f"max_catchup {catchup!r} must be an integer from 1 to"
                f" {MAX_CATCHUP}"))  # fmt: skip

    @property
    def starting_deadline_s(self) -> float | None:
        return self.starting_deadline  # normalized to seconds

    def _policy_dict(self) -> dict[str, Any]:
        return {
            "missed_runs": self.missed_runs,
            "starting_deadline": self.starting_deadline,
            "concurrency": self.concurrency,
            "max_catchup": self.max_catchup,
        }


@dataclass(frozen=True, slots=True)
class Cron(_Policies):
    """A cron schedule (Debian semantics) in an IANA timezone.

    ``timezone=None`` means the default zone: ``scheduler.timezone`` in YAML,
    else this machine's zone (resolved when the schedule is stored)."""

    expr: str
    timezone: str | None = None
    missed_runs: str = "once"
    starting_deadline: float | str | timedelta | None = None
    concurrency: str = "forbid"
    max_catchup: int = DEFAULT_MAX_CATCHUP

    kind = "cron"

    def __post_init__(self) -> None:
        from .cron import get_zone, normalize_cron

        try:
            _set(self, "expr", normalize_cron(self.expr))
        except ConfigError as exc:
            raise _at("cron", exc) from None
        if self.timezone is not None:
            try:
                get_zone(self.timezone)
            except ConfigError as exc:
                raise _at("timezone", exc) from None
        self._check_policies()

    def zone_name(self, default: str | None = None) -> str:
        """This schedule's zone, else ``default``, else the machine's zone."""
        from .cron import local_zone_name

        return self.timezone or default or local_zone_name()

    def timeline(self, default_zone: str | None = None) -> Any:
        from .cron import CronTimeline, get_zone

        return CronTimeline(self.expr, get_zone(self.zone_name(default_zone)))

    def describe(self) -> str:
        return f"cron {self.expr!r} {self.zone_name()}"

    def to_dict(self) -> dict[str, Any]:
        return {"cron": self.expr, "timezone": self.timezone, **self._policy_dict()}


@dataclass(frozen=True, slots=True)
class Every(_Policies):
    """Every ``interval`` (``"6h"``, seconds, a ``timedelta``; >= 1 s), counted
    from ``anchor`` (an aware datetime or ISO string; default the Unix epoch)."""

    interval: timedelta | str | float
    anchor: datetime | str | None = None
    missed_runs: str = "once"
    starting_deadline: float | str | timedelta | None = None
    concurrency: str = "forbid"
    max_catchup: int = DEFAULT_MAX_CATCHUP

    kind = "every"

    def __post_init__(self) -> None:
        interval = timedelta(seconds=_seconds(self.interval, "interval", "every"))
        if interval < MIN_INTERVAL:
            raise _at("every", ConfigError(
                f"interval {self.interval!r} must be at least 1s"))  # fmt: skip
        _set(self, "interval", interval)
        if self.anchor is not None:
            try:
                _set(self, "anchor", _aware(self.anchor))
            except ConfigError as exc:
                raise _at("anchor", exc) from None
        self._check_policies()

    @property
    def interval_s(self) -> float:
        return self.interval.total_seconds()  # type: ignore[union-attr]

    def timeline(self, default_zone: str | None = None) -> EveryTimeline:
        return EveryTimeline(self.interval, self.anchor or EPOCH)  # type: ignore[arg-type]

    def describe(self) -> str:
        text = f"every {_short_duration(self.interval_s)}"
        if self.anchor is not None:
            text += f" from {self.anchor.isoformat()}"  # type: ignore[union-attr]
        return text

    def to_dict(self) -> dict[str, Any]:
        anchor = self.anchor.isoformat() if self.anchor else None  # type: ignore[union-attr]
        return {"every": self.interval_s, "anchor": anchor, **self._policy_dict()}


Schedule = Cron | Every


class EveryTimeline:
    """The fire times ``anchor + k * interval`` (exact, microsecond arithmetic)."""

    def __init__(self, interval: timedelta, anchor: datetime) -> None:
        self.interval = interval
        self.anchor = anchor

    def _index(self, t: datetime) -> int:
        return (t - self.anchor) // self.interval  # floor, also before the anchor

    def first_after(self, t: datetime) -> datetime:
        return self.anchor + (self._index(t) + 1) * self.interval

    def latest_until(
        self, t: datetime, floor: datetime, hint: timedelta | None = None
    ) -> datetime | None:
        fire = self.anchor + self._index(t) * self.interval
        return fire if fire > floor else None

    def count(self, floor: datetime, t: datetime, cap: int) -> tuple[int, bool]:
        """Fires in ``(floor, t]`` (exact here; ``cap`` is for the cron kind)."""
        return max(0, self._index(t) - self._index(floor)), True


def schedule_from_dict(
    data: Mapping[str, Any] | Cron | Every,
    *,
    defaults: Mapping[str, Any] | None = None,
    where: str = "",
) -> Cron | Every:
    """A schedule from YAML/JSON: ``{cron: "0 0 * * *", timezone: ..., missed_runs:
    ...}`` or ``{every: 6h, anchor: ...}``; ``defaults`` fill keys not given
    (``scheduler.schedule_defaults`` and ``timezone: scheduler.timezone``).
    Errors name ``where`` (when given) and the bad key."""
    if isinstance(data, Cron | Every):
        return data
    at = f"{where}: " if where else ""
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{at}{data!r} must be a mapping like {{cron: '0 0 * * *'}}"
            " or {every: 6h}"
        )
    kinds = [k for k in ("cron", "every") if k in data]
    if len(kinds) != 1:
        raise ConfigError(
            f"{at}give exactly one of 'cron' or 'every', got {dict(data)!r}"
        )
    kind = kinds[0]
    allowed = {"cron": {"timezone"}, "every": {"anchor"}}[kind] | {
        kind,
        "missed_runs",
        "starting_deadline",
        "concurrency",
        "max_catchup",
    }
    unknown = sorted(set(data) - allowed)
    if unknown:
        choices = ", ".join(sorted(allowed))
        raise _at(unknown[0], ConfigError(
            f"{at}unknown key {unknown[0]!r}; allowed: {choices}"))  # fmt: skip
    merged = {k: v for k, v in (defaults or {}).items() if k in allowed and k != kind}
    merged.update({k: v for k, v in data.items() if v is not None})
    first = merged.pop(kind)
    try:
        return Cron(first, **merged) if kind == "cron" else Every(first, **merged)
    except ConfigError as exc:
        raise _at(exc.key, ConfigError(f"{at}{exc}")) if at else exc from None
    except TypeError as exc:  # pragma: no cover - keys are checked above
        raise ConfigError(f"{at}{exc}") from None


def coerce_schedule(value: Any) -> Cron | Every | None:
    """A model field's value (``JobSpec.schedule``, ``Workflow.schedule``): a
    ``Cron``/``Every``, or its YAML/JSON mapping; ConfigError (a ValueError)
    naming the problem otherwise."""
    if value is None or isinstance(value, Cron | Every):
        return value
    return schedule_from_dict(value)


def dump_schedule(value: Cron | Every | None) -> dict[str, Any] | None:
    """What a definition stores: ``{cron: ..., timezone: ...}`` / ``{every:
    seconds, anchor: ...}`` with the policies (None-valued keys left out)."""
    if value is None:
        return None
    return {k: v for k, v in value.to_dict().items() if v is not None}


# ---------------------------------------------------------------------- helpers
def _set(obj: object, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)  # normalizing a frozen dataclass


def _at(key: str | None, exc: ConfigError) -> ConfigError:
    """``exc`` about the value of ``key`` (a YAML key: see ``ConfigError.key``)."""
    exc.key = key
    return exc


def _seconds(value: Any, what: str, key: str | None = None) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    try:
        return parse_duration_s(value, what)
    except ConfigError as exc:
        raise _at(key or what, exc) from None


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(
                f"anchor {value!r} is not an ISO time like 2026-01-01T00:00:00Z"
            ) from None
    if not isinstance(value, datetime):
        raise ConfigError(f"anchor {value!r} must be a datetime or an ISO time")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ConfigError(
            f"anchor {value.isoformat()!r} has no timezone; add one (Z, +01:00)"
        )
    return value.astimezone(UTC)


def _short_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
