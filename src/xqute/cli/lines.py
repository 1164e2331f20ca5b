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

``show`` prints the lines: plain text when stdout is not a terminal (a pipe, a
file, ``watch``: rich is not even imported), else through rich, in color.
"""

from __future__ import annotations

import os
import sys
import unicodedata

TYPE_CHECKING = False  # typing is not imported at run time (xqute queue)
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["cell_width", "layout", "show"]

#: a cell: its text and its rich style ("" for none)
Cell = tuple[str, str]
_GAP = "  "


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
    """Whether rich would color stdout: a terminal, or one forced."""
    forced = os.environ.get("FORCE_COLOR") or os.environ.get("TTY_COMPATIBLE") == "1"
    return bool(forced) or sys.stdout.isatty()


def show(
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Cell]],
    footer: str = "",
) -> None:
    """Print the table (headers bold), then ``footer`` (dim), if any."""
    if not _colored():
        text = "\n".join(
            " " + _GAP.join(cell for cell, _ in line).rstrip()
            for line in layout(columns, rows)
        )
        sys.stdout.write(text + "\n" + (footer + "\n" if footer else ""))
        return
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False, emoji=False)
    width = console.width if sys.stdout.isatty() else None  # else: colors forced
    out = Text()
    for n, line in enumerate(layout(columns, rows, width)):
        out.append(" ")
        for i, (cell, style) in enumerate(line):
            out.append(cell, "bold" if n == 0 else style)
            if i < len(line) - 1:
                out.append(_GAP)
        out.rstrip()
        out.append("\n")
    if footer:
        out.append(footer + "\n", "dim")
    console.print(out, end="", soft_wrap=True)
