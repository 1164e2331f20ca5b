"""``jsontext.dumps`` writes what ``json.dumps`` writes (a submit stores its
command and env with it, without importing json)."""

from __future__ import annotations

import json
import os
import random

import pytest

from xqute.queue.jsontext import dumps

ODD = ["", '"', "\\", "\n\t\r\x00\x1f\x7f", "é", "日本", "\U0001f600", "\udcff",
       "\u2028", "a b", "</script>"]  # fmt: skip
STRINGS_ONLY = [*ODD, ODD, [], {}, dict(zip(ODD, ODD[::-1], strict=True))]
OTHERS = [
    [1, "a"],
    {"a": 1},
    {"a": ["b"]},
    3,
    None,
    ["a", None],
    True,
    False,
    -(2**63),
    {"v": 1, "j": {"n": None, "b": [True, 2, "x"]}, "e": {}},
    1.5,
    {1: "a"},
    ("a",),
    {"a": 1.0},
]  # the last four: json.dumps's own


@pytest.mark.parametrize("value", [*STRINGS_ONLY, dict(os.environ), *OTHERS])
def test_dumps_is_json_dumps(value):
    assert dumps(value) == json.dumps(value)


def _word(rng: random.Random) -> str:
    """Up to 8 characters, half of them ASCII, the others anywhere in Unicode
    (lone surrogates included: an environment's undecodable bytes)."""
    chars = [rng.randrange(0, 0x80) if rng.random() < 0.5 else rng.randrange(0x110000)
             for _ in range(rng.randrange(9))]  # fmt: skip
    return "".join(map(chr, chars))


def test_dumps_is_json_dumps_on_random_strings():
    rng = random.Random(7)
    for _ in range(200):
        words = [_word(rng) for _ in range(4)]
        env = dict(zip(words, words[::-1], strict=True))
        assert (dumps(words), dumps(env)) == (json.dumps(words), json.dumps(env))
