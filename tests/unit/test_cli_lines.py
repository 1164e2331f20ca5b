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


@pytest.mark.parametrize(
    ("env", "colored"),
    [
        ({"FORCE_COLOR": "1", "TERM": "xterm"}, True),
        ({"FORCE_COLOR": "1", "TERM": "xterm", "NO_COLOR": "1"}, False),
        ({"FORCE_COLOR": "1", "TERM": "dumb"}, False),
        ({"TERM": "xterm"}, False),  # capsys's stdout is no terminal
    ],
)
def test_show_colors_as_rich_would(capsys, monkeypatch, env, colored):
    """In color (the terminal's SGR codes, as rich writes them) only when
    asked; user strings stay text, never markup."""
    for name in ("FORCE_COLOR", "NO_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    rows = [[("1", ""), ("[bold]x[/bold]", "red"), ("", "")]]
    show(COLUMNS, rows, footer="no more")
    out = capsys.readouterr().out
    if colored:
        assert out.splitlines() == [
            " \x1b[1mID\x1b[0m  \x1b[1mNAME          \x1b[0m  \x1b[1mREASON\x1b[0m",
            "  1  \x1b[31m[bold]x[/bold]\x1b[0m",
            "\x1b[2mno more\x1b[0m",
        ]
    else:
        assert "\x1b" not in out and "[bold]x[/bold]" in out
