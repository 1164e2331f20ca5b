"""Refreshed: computed at each call while cheap; served from the last value,
refreshed in the background, once it is costly."""

from __future__ import annotations

import time

from xqute.monitoring.refreshed import Refreshed


def test_cheap_values_are_computed_each_time():
    calls = []
    value = Refreshed(lambda: calls.append(1) or len(calls), budget_s=1.0)
    assert [value.get(), value.get(), value.get()] == [1, 2, 3]


def test_costly_values_are_served_at_once_and_refreshed_behind():
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.05)
        return len(calls)

    value = Refreshed(slow, budget_s=0.01, duty=2.0)
    assert value.get() == 1  # the first one is computed: there is nothing else
    started = time.perf_counter()
    assert value.get() == 1  # not old enough to refresh: the last value, at once
    assert time.perf_counter() - started < 0.04
    time.sleep(2.5 * value.cost_s)  # older than duty x cost: a refresh starts
    assert value.get() == 1
    deadline = time.monotonic() + 5
    while value.value != 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert value.get() == 2 and len(calls) == 2
    assert value.computed_at > 0
