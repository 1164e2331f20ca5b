"""The fire decision: which scheduled times get a run now, which were missed or
coalesced, and what happens when the previous run is still active.

Pure functions over plain data (the fire loop and the store do the I/O; the
tests in tests/unit/orchestration/test_fires.py are tables):

``due(schedule, state, now, watching_since) -> Plan``
    The times in ``(state.settled_until, now]``, settled in this order:

    1. older than ``now - starting_deadline``: **missed** (one group);
    2. with ``missed_runs="skip"``: those that came due while nobody watched
       (``<= watching_since``: the daemon was down, the machine asleep, the
       clock jumped over them) are **missed**; the ones the loop saw come due
       run;
    3. ``"once"``: one run for the latest; the others **coalesced** into it;
       ``"all"`` (and ``"skip"``'s on-time ones): one run each, oldest first,
       at most ``max_catchup`` of them (the newest); older ones **missed**.

    A time is never enumerated one by one across a downtime: the latest time
    and its predecessors are searched for, and groups are counted up to
    ``max_catchup`` (beyond that a count says "more than"), so a 10-year
    downtime of a per-second schedule costs the same as a minute's.
    ``settled_until`` only moves forward: after a backward clock step nothing
    is due until the wall clock passes it again, so no time fires twice.

``admit(schedule, candidates, active, now) -> Admission``
    Overlap, given the runs of this schedule still active: ``allow`` starts
    every candidate; ``forbid`` skips them (``skipped_overlap``), except with
    ``missed_runs="all"``, whose fires wait in the backlog for their turn
    (oldest first, at most ``max_catchup``); ``replace`` cancels the active
    runs and starts the newest candidate once they are gone (older candidates
    are ``replaced``). A fire that waited past ``starting_deadline`` is
    **missed** (``expired``), as a new one would be.

``resume(state, now)`` skips what came due while a schedule was suspended.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

__all__ = [
    "JUMP_TOLERANCE_S",
    "Admission",
    "Fire",
    "Group",
    "Plan",
    "ScheduleState",
    "admit",
    "due",
    "resume",
    "watching_since",
]

#: a wall clock that moved this much more (or less) than the monotonic clock
#: between two looks jumped (NTP step, suspend/resume): the loop was not watching
JUMP_TOLERANCE_S = 1.0
_TICK = timedelta(microseconds=1)

COALESCED = "coalesced"
MISSED = "missed"
SKIPPED_OVERLAP = "skipped_overlap"
REPLACED = "replaced"
REASON_DEADLINE = "older than starting_deadline"
REASON_SKIP = "missed_runs=skip"  # came due while no daemon watched
REASON_CAP = "beyond max_catchup"
REASON_SUSPENDED = "suspended"


@dataclass(frozen=True, slots=True)
class Fire:
    """A scheduled time that wants a run. ``catchup``: it came due while nobody
    watched (daemon down, machine asleep, clock jump), so it runs late."""

    scheduled_for: datetime
    catchup: bool = False


@dataclass(frozen=True, slots=True)
class Group:
    """Consecutive scheduled times settled without a run of their own.

    ``count`` is exact when ``exact``; otherwise there were more than
    ``count - 1`` (counting stops at ``max_catchup + 1`` for cron schedules)."""

    outcome: str  # coalesced | missed
    reason: str
    first: datetime
    last: datetime
    count: int
    exact: bool = True

    def count_text(self) -> str:
        return str(self.count) if self.exact else f"more than {self.count - 1}"


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """What the db remembers: every time ``<= settled_until`` was handled;
    ``backlog``: fires admitted but waiting for an active run (oldest first)."""

    settled_until: datetime
    backlog: tuple[Fire, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    fires: tuple[Fire, ...]  # want a run, oldest first
    groups: tuple[Group, ...]  # coalesced or missed, oldest first
    settled_until: datetime
    next_fire: datetime | None  # the first time after now


@dataclass(frozen=True, slots=True)
class Admission:
    start: tuple[Fire, ...] = ()  # create a run for each, oldest first
    skipped: tuple[Fire, ...] = ()  # skipped_overlap (forbid)
    replaced: tuple[Fire, ...] = ()  # superseded by a newer fire (replace)
    dropped: tuple[Fire, ...] = ()  # backlog overflow: missed (max_catchup)
    cancel: tuple[int, ...] = ()  # active runs to cancel (replace)
    backlog: tuple[Fire, ...] = ()  # wait until no run is active
    expired: tuple[Fire, ...] = ()  # older than starting_deadline: missed


def due(
    schedule: Any,
    state: ScheduleState,
    now: datetime,
    watching: datetime | None = None,
    *,
    zone: str | None = None,
) -> Plan:
    """The plan for ``schedule`` (a ``Cron`` or ``Every``) at ``now``.

    ``watching``: since when the caller has watched without a gap (its last
    look, see ``watching_since``); None right after a start or a clock jump.
    ``zone`` is the default zone of a cron schedule without one."""
    timeline = schedule.timeline(zone)
    settled = state.settled_until
    if now <= settled:  # nothing new, or the clock stepped back
        return Plan((), (), settled, timeline.first_after(settled))
    upcoming = timeline.first_after(now)
    latest = timeline.latest_until(now, settled)
    if latest is None:
        return Plan((), (), now, upcoming)
    cap = schedule.max_catchup
    watched = min(watching, now) if watching is not None else now
    groups: list[Group] = []
    floor = settled
    if schedule.starting_deadline_s is not None:
        cutoff = now - timedelta(seconds=schedule.starting_deadline_s)
        stale = timeline.latest_until(cutoff - _TICK, floor) if cutoff > floor else None
        if stale is not None:
            groups.append(_group(timeline, MISSED, REASON_DEADLINE, floor, stale, cap))
            floor = stale
    if schedule.missed_runs == "skip" and watched > floor:
        unwatched = timeline.latest_until(watched, floor)
        if unwatched is not None:
            groups.append(_group(timeline, MISSED, REASON_SKIP, floor, unwatched, cap))
            floor = unwatched
    if latest <= floor:
        return Plan((), tuple(groups), now, upcoming)
    if schedule.missed_runs == "once":
        count, exact = timeline.count(floor, latest, cap + 1)
        if count > 1:
            before = timeline.latest_until(latest - _TICK, floor)
            groups.append(Group(
                COALESCED, f"into the run for {latest.isoformat()}",
                timeline.first_after(floor), before, count - 1, exact,
            ))  # fmt: skip
        times = [latest]
    else:
        times = [latest]
        gap = None
        while len(times) <= cap:
            earlier = timeline.latest_until(times[-1] - _TICK, floor, gap)
            if earlier is None:
                break
            gap = times[-1] - earlier
            times.append(earlier)
        if len(times) > cap:  # the newest `cap` run; older ones are missed
            older = times.pop()
            groups.append(_group(timeline, MISSED, REASON_CAP, floor, older, cap))
        times.reverse()
    fires = tuple(Fire(t, catchup=t <= watched) for t in times)
    return Plan(fires, tuple(groups), now, upcoming)


def admit(
    schedule: Any,
    candidates: Sequence[Fire],
    active: Sequence[int],
    now: datetime | None = None,
) -> Admission:
    """What to do with ``candidates`` (the backlog, then new fires; oldest
    first) given the schedule's active runs (see the module docstring).

    At ``now``, a candidate older than ``starting_deadline`` is ``expired``
    (missed): a fire that waited in the backlog is held to the deadline like
    a new one (``due`` leaves out new ones that are that old)."""
    fires = tuple(candidates)
    expired: tuple[Fire, ...] = ()
    if now is not None and schedule.starting_deadline_s is not None:
        cutoff = now - timedelta(seconds=schedule.starting_deadline_s)
        expired = tuple(f for f in fires if f.scheduled_for < cutoff)
        fires = tuple(f for f in fires if f.scheduled_for >= cutoff)
    return replace(_admit(schedule, fires, active), expired=expired)


def _admit(schedule: Any, fires: tuple[Fire, ...], active: Sequence[int]) -> Admission:
    if not fires:
        return Admission()
    queueing = schedule.missed_runs == "all"
    dropped: tuple[Fire, ...] = ()
    if queueing and len(fires) > schedule.max_catchup:
        cut = len(fires) - schedule.max_catchup
        dropped, fires = fires[:cut], fires[cut:]
    if schedule.concurrency == "allow":
        return Admission(start=fires, dropped=dropped)
    if schedule.concurrency == "replace":
        newest, older = fires[-1:], fires[:-1]
        if active:
            return Admission(
                replaced=older, dropped=dropped, cancel=tuple(active), backlog=newest
            )
        return Admission(start=newest, replaced=older, dropped=dropped)
    # forbid
    if queueing:
        if active:
            return Admission(dropped=dropped, backlog=fires)
        return Admission(start=fires[:1], dropped=dropped, backlog=fires[1:])
    if active:
        return Admission(skipped=fires, dropped=dropped)
    return Admission(start=fires[-1:], skipped=fires[:-1], dropped=dropped)


def resume(
    schedule: Any, state: ScheduleState, now: datetime, *, zone: str | None = None
) -> tuple[ScheduleState, tuple[Group, ...]]:
    """A suspended schedule resumes: what came due meanwhile (and its backlog)
    is skipped, recorded as missed."""
    timeline = schedule.timeline(zone)
    groups: list[Group] = []
    if state.backlog:
        first, last = state.backlog[0].scheduled_for, state.backlog[-1].scheduled_for
        groups.append(Group(MISSED, REASON_SUSPENDED, first, last, len(state.backlog)))
    settled = state.settled_until
    if now > settled:
        latest = timeline.latest_until(now, settled)
        if latest is not None:
            cap = schedule.max_catchup
            groups.append(
                _group(timeline, MISSED, REASON_SUSPENDED, settled, latest, cap)
            )
    return ScheduleState(max(settled, now)), tuple(groups)


def watching_since(
    previous: tuple[datetime, float] | None, now: datetime, monotonic_s: float
) -> datetime | None:
    """The loop's ``watching`` argument for ``due``: the wall time of its
    previous look ``(wall, monotonic)`` if the wall clock advanced like the
    monotonic one since (within ``JUMP_TOLERANCE_S``), else None (first look,
    NTP step, or the machine slept: the monotonic clock stops in suspend)."""
    if previous is None:
        return None
    wall, mono = previous
    drift = (now - wall).total_seconds() - (monotonic_s - mono)
    return wall if abs(drift) <= JUMP_TOLERANCE_S else None


def _group(
    timeline: Any, outcome: str, reason: str, floor: datetime, last: datetime, cap: int
) -> Group:
    """The times in ``(floor, last]`` as one group (``last`` is a fire time)."""
    count, exact = timeline.count(floor, last, cap)
    return Group(outcome, reason, timeline.first_after(floor), last, count, exact)
