"""#{...} references: parsing, one-pass substitution, shell quoting, outputs."""

import shlex
import subprocess

import pytest

from xqute.errors import RenderError
from xqute.orchestration.refs import (
    check_output,
    classify,
    quoted_references,
    references,
    render,
    render_shell,
)

VALUES = {
    "params.x": "#{params.y}",
    "a.output": "it's $(rm -rf ~) `x`\n;",
    "run.id": "7",
}


@pytest.mark.parametrize(
    ("text", "refs"),
    [
        ("plain", []),
        ("#{params.x}", ["params.x"]),
        ("a#{a.output}b#{run.id}", ["a.output", "run.id"]),
        ("##{params.x}", []),
        ("#{ unclosed", []),
    ],
)
def test_references(text, refs):
    assert references(text) == refs


@pytest.mark.parametrize(
    ("expr", "kind"),
    [
        ("params.input", ("param", "input")),
        ("extract.output", ("output", "extract")),
        ("run.id", ("run", "id")),
        ("item.index", ("item", "index")),
        (" run.name ", ("run", "name")),
    ],
)
def test_classify(expr, kind):
    assert classify(expr) == kind


@pytest.mark.parametrize("expr", ["extract.outputs", "params.", "params.a-b", "x"])
def test_classify_rejects(expr):
    with pytest.raises(RenderError, match="unknown reference"):
        classify(expr)


def test_render_is_one_pass():
    # a value that looks like a reference is not substituted again
    assert render("-#{params.x}-", VALUES.__getitem__) == "-#{params.y}-"
    assert render("##{params.x}", VALUES.__getitem__) == "#{params.x}"


def test_shell_values_are_one_word(tmp_path):
    code = render_shell("printf '%s|' #{a.output} #{params.x}", VALUES.__getitem__)
    out = subprocess.run(["bash", "-c", code], capture_output=True, text=True)
    assert out.stdout == VALUES["a.output"] + "|" + "#{params.y}|"
    assert shlex.split(code)[2] == VALUES["a.output"]


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("echo #{a.output}", []),
        ("echo '#{a.output}'", ["a.output"]),
        ('echo "x #{a.output}"', ["a.output"]),
        ("echo \\'#{a.output}", []),
        ("echo 'it''s' #{a.output}", []),
        ('echo "a\\"#{a.output}"', ["a.output"]),
        ("echo '##{x}'", []),
    ],
)
def test_quoted_references(text, quoted):
    assert quoted_references(text) == quoted


@pytest.mark.parametrize(
    ("data", "value", "why"),
    [
        (b"hello\n", "hello", None),
        (b"a\n\n", "a\n", None),
        (b"", "", None),
        ("h\u00e9".encode(), "h\u00e9", None),
        (b"x" * 11, None, "output is 11 bytes > 10: write the data to a file"),
        (b"a\x00b", None, "NUL byte at offset 1"),
        (b"\xff\xfe", None, "not UTF-8 text (byte offset 0)"),
    ],
)
def test_check_output(data, value, why):
    got, reason = check_output(data, 10)
    assert got == value
    assert (reason is None) if why is None else why in reason
