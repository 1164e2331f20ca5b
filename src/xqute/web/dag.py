"""Where to draw a run's DAG: a pure layout, rendered as SVG by the run page.

Tasks go in columns by level (a task with no dependency is level 0, the others
one more than their deepest parent: the longest path from a root), so every
edge points right. Within a column tasks keep their order of the definition,
then one pass orders each column by the mean row of its parents (fewer
crossings for the usual fan-out/fan-in). Plain data in, plain data out: the
template draws boxes and paths, and escapes every name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["MAX_DRAWN", "Layout", "Node", "layout"]

NODE_W, NODE_H = 168, 52
GAP_X, GAP_Y = 56, 18
MARGIN = 12
MAX_DRAWN = 400  # more tasks than this: the page shows the table only


@dataclass(frozen=True)
class Node:
    name: str
    level: int
    row: int
    x: int
    y: int


@dataclass(frozen=True)
class Layout:
    nodes: list[Node]
    edges: list[tuple[str, str, str]]  # (parent, child, SVG path)
    width: int
    height: int


def levels(deps: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each task's level (the longest path from a root); unknown parents are
    ignored (the definition was validated; this only draws)."""
    level: dict[str, int] = {}
    visiting: set[str] = set()

    def of(task: str) -> int:
        if task in level:
            return level[task]
        if task in visiting:  # a cycle cannot be in a valid run: draw it flat
            return 0
        visiting.add(task)
        parents = [p for p in deps.get(task, ()) if p in deps]
        level[task] = 1 + max(map(of, parents)) if parents else 0
        visiting.discard(task)
        return level[task]

    for task in deps:
        of(task)
    return level


def layout(deps: Mapping[str, Sequence[str]]) -> Layout:
    """``deps``: task -> its dependencies, in the definition's order."""
    level = levels(deps)
    columns: dict[int, list[str]] = {}
    for task in deps:  # definition order
        columns.setdefault(level[task], []).append(task)
    row: dict[str, int] = {}
    for lvl in sorted(columns):
        column = columns[lvl]
        if lvl > 0:  # by the mean row of the parents, stable

            def weight(task: str) -> float:
                parents = [row[p] for p in deps[task] if p in row]
                return sum(parents) / len(parents) if parents else 0.0

            column.sort(key=weight)
        for i, task in enumerate(column):
            row[task] = i
    nodes = {
        task: Node(
            task,
            level[task],
            row[task],
            MARGIN + level[task] * (NODE_W + GAP_X),
            MARGIN + row[task] * (NODE_H + GAP_Y),
        )
        for task in deps
    }
    edges = []
    for task, parents in deps.items():
        child = nodes[task]
        for parent in parents:
            if parent not in nodes:
                continue
            p = nodes[parent]
            x1, y1 = p.x + NODE_W, p.y + NODE_H // 2
            x2, y2 = child.x, child.y + NODE_H // 2
            mid = (x1 + x2) // 2
            edges.append(
                (parent, task, f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2 - 6},{y2}")
            )
    width = MARGIN * 2 + (max(level.values(), default=0) + 1) * (NODE_W + GAP_X) - GAP_X
    tallest = max((len(c) for c in columns.values()), default=1)
    height = MARGIN * 2 + tallest * (NODE_H + GAP_Y) - GAP_Y
    return Layout(list(nodes.values()), edges, width, height)
