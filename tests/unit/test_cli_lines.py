"""The one-line-per-row table of ``xqute queue`` (xqute.cli.lines)."""

import pytest

from xqute.cli.lines import cell_width, layout, show

COLUMNS = [("ID", "right"), ("NAME", "left"), ("REASON", "left")]


def texts(lines):
    return [[text for text, _ in line] for line in lines]


@pytest.mark.parametrize(
    ("text", "width"),
    [("", 0), ("abc", 3), ("日本", 4), ("e\u0301", 1), ("…", 1), ("[/]", 3)],
)
def test_cell_width(text, width):
    assert cell_width(text) == width


@pytest.mark.parametrize(
    ("rows", "width", "expected"),
    [
        # padded to the widest cell (the header's too), ids to the right
        (
            [["7", "a", ""], ["123", "name", "why"]],
            None,
            [[" ID", "NAME", "REASON"], ["  7", "a   ", "      "],
             ["123", "name", "why   "]],
        ),
        # wide characters take two cells
        (
            [["1", "日本", "x"]],
            None,
            [["ID", "NAME", "REASON"], [" 1", "日本", "x     "]],
        ),
        # no room: the last column is cut to what is left ...
        (
            [["1", "n", "a long reason to wait"]],
            2 * 3 + 2 + 4 + 10,
            [["ID", "NAME", "REASON    "], [" 1", "n   ", "a long re…"]],
        ),
        # ... but never below its header
        (
            [["1", "n", "a long reason to wait"]],
            12,
            [["ID", "NAME", "REASON"], [" 1", "n   ", "a lon…"]],
        ),
        # wide enough: nothing is cut
        (
            [["1", "n", "why"]],
            80,
            [["ID", "NAME", "REASON"], [" 1", "n   ", "why   "]],
        ),
    ],
)  # fmt: skip
def test_layout(rows, width, expected):
    cells = [[(text, "") for text in row] for row in rows]
    assert texts(layout(COLUMNS, cells, width)) == expected


def test_styles_stay_with_their_cells():
    lines = layout(COLUMNS, [[("1", ""), ("n", "red"), ("", "")]])
    assert [style for _, style in lines[1]] == ["", "red", ""]


def test_show_prints_plain_lines_to_a_pipe(capsys):
    rows = [[("1", ""), ("[bold]x[/bold]", "red"), ("", "")]]
    show(COLUMNS, rows, footer="no more")
    assert capsys.readouterr().out.splitlines() == [
        " ID  NAME            REASON",
        "  1  [bold]x[/bold]",
        "no more",
    ]


def test_show_colors_through_rich_when_asked(capsys, monkeypatch):
    """FORCE_COLOR (or a terminal): rich prints the same cells, styled; user
    strings stay text, never markup."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm")  # not "dumb": rich would not color
    monkeypatch.delenv("NO_COLOR", raising=False)
    rows = [[("1", ""), ("[bold]x[/bold]", "red"), ("", "")]]
    show(COLUMNS, rows, footer="no more")
    out = capsys.readouterr().out
    assert "\x1b[31m[bold]x[/bold]\x1b[0m" in out and "\x1b[2mno more" in out
    assert "\x1b[1mREASON" in out
