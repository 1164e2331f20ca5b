"""``xqute run`` templates: GNU parallel's replacement strings, each value one
shell word, ::: sources split before the option parser, every combination."""

import shlex

import pytest

from xqute import ConfigError
from xqute.cli.run_args import expand, render, split_sources


@pytest.mark.parametrize(
    "template, value, expected",
    [
        ("gzip {}", "a.txt", "gzip a.txt"),
        ("echo {.}", "b.tar.gz", "echo b.tar"),
        ("echo {.}", "x.y/z", "echo x.y/z"),
        ("echo {.}", "a.", "echo a"),
        ("echo {/}", "/data/in/a.txt", "echo a.txt"),
        ("echo {//}", "/data/in/a.txt", "echo /data/in"),
        ("echo {//}", "a.txt", "echo ."),
        ("echo {/.}", "/data/in/a.txt", "echo a"),
        ("echo {#}", "whatever", "echo 7"),
        ("gzip", "a.txt", "gzip a.txt"),  # no replacement string: appended
    ],
)
def test_replacement_strings_as_gnu_parallel(template, value, expected):
    assert render(template, [value], 7) == expected


@pytest.mark.parametrize(
    "value", ["a b", "it's", "$HOME", "x; rm -rf /", "`id`", "-n", "", "*", "\n"]
)
def test_each_value_is_one_shell_word(value):
    command = render("printf %s {}", [value], 1)
    assert shlex.split(command) == ["printf", "%s", value]
    assert shlex.split(render("cp {} {/}", [value], 1))[1] == value


def test_positional_fields_and_combinations():
    jobs = list(expand("cp {1} {2}/", [["a", "b"], ["d1", "d2"]]))
    assert [(n, cmd) for n, _, cmd in jobs] == [
        (1, "cp a d1/"), (2, "cp a d2/"), (3, "cp b d1/"), (4, "cp b d2/"),
    ]  # fmt: skip
    assert jobs[1][1] == ["a", "d2"]
    assert render("echo {}", ["a b", "c"], 1) == "echo 'a b' c"
    with pytest.raises(ConfigError, match=r"\{3\} .* only 2 input source"):
        render("echo {3}", ["a", "b"], 1)
    with pytest.raises(ConfigError, match="template is empty"):
        list(expand(" ", [["a"]]))


def test_sources_are_split_before_the_options():
    head, sources = split_sources(["-j", "2", "echo", ":::", "-n", "a", "::::", "f"])
    assert head == ["-j", "2", "echo"]
    assert sources == [["values", "-n", "a"], ["files", "f"]]
    assert split_sources(["jobs.txt", "-j", "8"]) == (["jobs.txt", "-j", "8"], [])
    with pytest.raises(ConfigError, match="::: must be followed"):
        split_sources(["echo", ":::"])
