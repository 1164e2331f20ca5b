"""Policy amounts (quota limits, priority class values, resource classes)
refuse nan, inf and integers past SQLite's by name: they were stored, and
failed (or never matched) at dispatch or submit."""

import pytest

from xqute.errors import ConfigError
from xqute.orchestration import PriorityClass, ResourceClass, ResourceLimits

HUGE = 10**23


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ResourceLimits(cpu=float("nan")), "cpu nan must be a finite number"),
        (lambda: ResourceLimits(cpu=float("inf")), "cpu inf must be a finite number"),
        (
            lambda: ResourceLimits(cpu=float(HUGE)),
            "cpu 1e.23 must be a number >= 0 and <=",
        ),
        (
            lambda: ResourceLimits(jobs=HUGE),
            f"jobs {HUGE} must be an integer >= 0 and <=",
        ),
        (
            lambda: ResourceLimits(memory=10**400),
            "memory 1000.* must be a finite memory size",
        ),
        (
            lambda: ResourceLimits(memory=float("inf")),
            "memory inf must be a finite memory size",
        ),
        (
            lambda: PriorityClass(name="h", value=HUGE),
            f"value {HUGE} must be an integer >= -9",
        ),
        (
            lambda: PriorityClass(name="h", value=-HUGE),
            f"value -{HUGE} must be an integer",
        ),
        (
            lambda: ResourceClass(name="s", cpu=HUGE),
            f"cpu {HUGE} must be an integer >= 1 and <=",
        ),
    ],
)
def test_amounts_out_of_range_are_refused_by_name(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_the_largest_amounts_are_accepted():
    assert PriorityClass(name="h", value=2**63 - 1).value == 2**63 - 1
    assert ResourceLimits(cpu=1e6, jobs=2**63 - 1).jobs == 2**63 - 1
