"""xqute.checks: what every entry point accepts and refuses, with one wording."""

import re

import pytest

from xqute import checks
from xqute.errors import ConfigError

MAX = checks.MAX_ID

ACCEPTED = [
    (checks.integer, ("priority", -3), {}, -3),
    (checks.integer, ("priority", 0), {}, 0),
    (checks.positive_int, ("forks", 1), {}, 1),
    (checks.positive_int, ("limit", 0), {"minimum": 0}, 0),
    (checks.row_id, ("job id", 7), {}, 7),
    (checks.row_id, ("job id", "7"), {}, 7),
    (checks.row_id, ("job id", " 12 "), {}, 12),
    (checks.row_id, ("run id", str(MAX)), {}, MAX),
    (checks.seconds, ("timeout", 1), {}, 1.0),
    (checks.seconds, ("grace", 0), {"zero_ok": True}, 0.0),
]

REFUSED = [
    (checks.integer, ("priority", True), {}, "priority True must be an integer"),
    (checks.integer, ("priority", 1.5), {}, "priority 1.5 must be an integer"),
    (checks.integer, ("priority", "1"), {}, "priority '1' must be an integer"),
    (checks.positive_int, ("forks", 0), {}, "forks 0 must be an integer >= 1"),
    (checks.positive_int, ("forks", False), {}, "forks False must be an integer >= 1"),
    (checks.row_id, ("job id", 0), {}, "job id 0 must be a positive integer"),
    (checks.row_id, ("job id", -1), {}, "job id -1 must be a positive integer"),
    (checks.row_id, ("job id", True), {}, "job id True must be a positive integer"),
    (checks.row_id, ("job id", "abc"), {}, "job id 'abc' must be a positive integer"),
    (checks.row_id, ("job id", "\u00b2"), {}, "job id '²' must be a positive integer"),
    (checks.row_id, ("job id", "-3"), {}, "job id '-3' must be a positive integer"),
    (checks.row_id, ("run id", MAX + 1), {}, f"run id {MAX + 1} must be a positive"),
    (checks.row_id, ("run id", str(1 << 70)), {}, f"run id '{1 << 70}' must be a"),
    (checks.row_id, ("run id", 2.0), {}, "run id 2.0 must be a positive integer"),
    (checks.seconds, ("timeout", 0), {}, "timeout 0 must be a positive number"),
    (checks.seconds, ("grace", -1), {"zero_ok": True}, "grace -1 must be a number"),
]


@pytest.mark.parametrize(("check", "args", "kwargs", "expected"), ACCEPTED)
def test_accepted(check, args, kwargs, expected):
    value = check(*args, **kwargs)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(("check", "args", "kwargs", "message"), REFUSED)
def test_refused(check, args, kwargs, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        check(*args, **kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        # (nan and inf were kept: a poll every nan seconds, a grace of inf)
        ({"scheduler_opts": {"poll_interval_s": float("nan")}}, "poll_interval_s nan"),
        ({"scheduler_opts": {"kill_grace_s": float("inf")}}, "kill_grace_s inf"),
        ({"retry_backoff_s": float("nan")}, "retry_backoff_s nan"),
        ({"scheduler_opts": {"poll_interval_s": 10**400}}, "poll_interval_s 1000"),
        ({"workdir": None}, "workdir None must be a path"),  # was a TypeError
        ({"workdir": ""}, "workdir '' must be a path"),
        ({"workdir": "a\x00"}, r"workdir 'a\\x00' must be a path"),
        ({"workdir": 5}, "workdir 5 must be a path"),
    ],
)
def test_engine_arguments_no_run_can_use_are_refused_by_name(kwargs, message):
    from xqute import Xqute

    with pytest.raises(ConfigError, match=message):
        Xqute(**kwargs)
