import pytest

from xqute import ConfigError, Resources
from xqute.retry import backoff_delay_s
from xqute.units import (
    format_duration_s,
    format_mem_mb,
    parse_duration_s,
    parse_mem_mb,
    parse_size_bytes,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        (90, 90),
        ("90s", 90),
        ("15m", 900),
        ("1h", 3600),
        ("2d", 172800),
        ("1.5h", 5400),
        ("01:30:00", 5400),
        ("1:30", 5400),
        ("1-00:00:00", 86400),
        (0.5, 0.5),
    ],
)
def test_durations(text, seconds):
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize(
    "bad",
    # (10**400 and 9...9 days are past a float's range: no OverflowError)
    ["", "5x", "-3", "h", "1h30", 0, -1, True, "abc", 10**400, "9" * 400 + "-00:00"],
)
def test_bad_durations_name_the_value(bad):
    with pytest.raises(ConfigError) as info:
        parse_duration_s(bad, "--timeout")
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize(
    ("text", "mb"),
    [
        ("512M", 512),
        ("4G", 4096),
        ("4g", 4096),
        ("1.5GB", 1536),
        (512, 512),
        ("1T", 1048576),
        ("2048K", 2),
        ("100", 100),
        ("4GiB", 4096),
        ("4Gi", 4096),
        ("512Mi", 512),
    ],
)
def test_memory(text, mb):
    assert parse_mem_mb(text) == mb


@pytest.mark.parametrize(
    "bad", ["", "4X", "G", "-1G", True, "four", 10**400, float("inf"), "1e999G"]
)
def test_bad_memory_names_the_value(bad):
    with pytest.raises(ConfigError) as info:
        parse_mem_mb(bad, "--mem")
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize(
    ("text", "size"),
    [(65536, 65536), ("64Ki", 65536), ("64K", 65536), ("4Mi", 4194304), ("10", 10)],
)
def test_size_bytes(text, size):
    assert parse_size_bytes(text) == size


@pytest.mark.parametrize("bad", ["", "4X", 0, True, "-1K"])
def test_bad_size_names_the_value(bad):
    with pytest.raises(ConfigError) as info:
        parse_size_bytes(bad, "output_max_bytes")
    assert repr(bad) in str(info.value)


def test_formatting():
    assert format_duration_s(5400) == "1:30:00"
    assert format_duration_s(59.2) == "0:01:00"
    assert format_mem_mb(4096) == "4G"
    assert format_mem_mb(1500) == "1500M"


def test_resources_parse_friendly_units():
    res = Resources.parse({"cpus": 2, "mem": "4G", "gpus": 1, "time": "1h"})
    assert res == Resources(cpus=2, mem_mb=4096, gpus=1, time_limit_s=3600)
    assert res.as_dict() == {"cpus": 2, "mem_mb": 4096, "gpus": 1, "time_limit_s": 3600}
    assert not Resources.parse(None)


@pytest.mark.parametrize(
    "bad", [{"cpu": 2}, {"cpus": -1}, {"cpus": 0}, {"cpus": "2"}, "2 cpus"]
)
def test_resources_reject_bad_input(bad):
    with pytest.raises(ConfigError):
        Resources.parse(bad)


def test_backoff_is_exponential_capped_and_jittered():
    import random

    rng = random.Random(1)
    delays = [backoff_delay_s(n, 1.0, 10.0, rng) for n in range(1, 8)]
    for n, delay in enumerate(delays, start=1):
        cap = min(10.0, 2.0 ** (n - 1))
        assert cap / 2 <= delay <= cap
    assert backoff_delay_s(3, 0, 60) == 0
