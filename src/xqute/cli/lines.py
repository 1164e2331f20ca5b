"""A table of one line per row, for the listing people run in loops (``xqute
queue``, ``watch xqute queue``).

rich's ``Table`` lays every cell out as a renderable of its own (measured,
wrapped, padded, cropped): ~1.5 ms a row, so 150 ms of the 100 rows ``xqute
queue`` shows, most of its time, plus ~50 ms to import it. These rows are short
strings that need none of that: here each column is padded to its widest cell
(display width: a CJK character takes two cells), the columns two spaces apart,
as rich's ``Table(box=None)`` lays them out when they fit. In a terminal too
narrow for a line, the last column is cut to what is left (down to its
header's width); a line still too long wraps, as squeue's do.

``show`` prints the lines, in color in a terminal: the few styles a cell has
(bold, dim, five basic colors) are written as the terminal's SGR codes, with
rich's conventions (``NO_COLOR``, ``FORCE_COLOR``, ``TERM=dumb``,
``$COLUMNS``), but without importing rich: ~45 ms, most of a colored
listing's time, and ``xqute queue`` is mostly typed in a terminal.
"""

from __future__ import annotations

import os
import sys
import unicodedata

TYPE_CHECKING = False  # typing is not imported at run time (xqute queue)
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["cell_width", "layout", "show"]

#: a cell: its text and its style ("" for none; rich's names)
Cell = tuple[str, str]
_GAP = "  "
#: the styles a cell may have, as the terminal's SGR codes
_SGR = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33",
        "magenta": "35", "cyan": "36"}  # fmt: skip


def cell_width(text: str) -> int:
    """Terminal cells ``text`` takes: two for a wide (East Asian) character,
    none for a combining one."""
    if text.isascii():
        return len(text)
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in "WF" else 1
    return width


def _cut(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells, ending in an ellipsis if it was cut."""
    if cell_width(text) <= width:
        return text
    out, used = "", 1  # the ellipsis takes one cell
    for char in text:
        used += cell_width(char)
        if used > width:
            break
        out += char
    return out + "…"


def layout(
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Cell]],
    width: int | None = None,
) -> list[list[Cell]]:
    """The header line and one line per row, each a list of cells padded to
    their column's width (``columns``: (header, "left" or "right")). ``width``:
    the line's room (a terminal's columns), None for no limit."""
    widths = [cell_width(header) for header, _ in columns]
    for row in rows:
        for i, (text, _) in enumerate(row):
            widths[i] = max(widths[i], cell_width(text))
    if width is not None:  # the gaps and a space at each end take 2 * n
        room = width - 2 * len(columns) - sum(widths[:-1])
        widths[-1] = max(min(widths[-1], room), cell_width(columns[-1][0]))
    lines = []
    for row in [[(header, "") for header, _ in columns], *rows]:
        line = []
        for (text, style), (_, justify), size in zip(row, columns, widths, strict=True):
            text = _cut(text, size)
            pad = " " * (size - cell_width(text))
            line.append((pad + text if justify == "right" else text + pad, style))
        lines.append(line)
    return lines


def _colored() -> bool:
    """Whether to color: a terminal, or ``FORCE_COLOR``; never with
    ``NO_COLOR`` or a dumb ``TERM`` (the conventions rich follows)."""
    env = os.environ
    if env.get("NO_COLOR") or env.get("TERM") in ("dumb", "unknown"):
        return False
    return bool(env.get("FORCE_COLOR")) or sys.stdout.isatty()


def _width() -> int | None:
    """A terminal's columns (``$COLUMNS`` first, as rich reads them); None
    when stdout is no terminal: a line is as long as its cells."""
    if not sys.stdout.isatty():
        return None
    columns = os.environ.get("COLUMNS", "")
    if columns.isascii() and columns.isdigit():
        return int(columns)
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns
    except OSError:
        return None


def show(
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Cell]],
    footer: str = "",
) -> None:
    """Print the table (headers bold), then ``footer`` (dim), if any."""
    color = _colored()

    def paint(text: str, style: str) -> str:
        code = _SGR.get(style) if color and text else None
        return f"\x1b[{code}m{text}\x1b[0m" if code else text

    out = []
    for n, line in enumerate(layout(columns, rows, _width())):
        *cells, (last, style) = line
        cells.append((last.rstrip(), style))  # no trailing blanks
        styled = (paint(text, "bold" if n == 0 else style) for text, style in cells)
        out.append((" " + _GAP.join(styled)).rstrip() + "\n")
    if footer:
        out.append(paint(footer, "dim") + "\n")
    sys.stdout.write("".join(out))
