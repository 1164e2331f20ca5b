"""How the workflow verbs draw runs and DAGs: a spanning tree of the DAG (each
task under its latest dependency, the others named), each node with its
state; a DOT graph; the run's summary. Pure functions over plain data, then
rich renderables: user strings (task names, outputs, reasons) are escaped,
never read as rich markup.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.markup import escape
from rich.tree import Tree

from . import _format as fmt

__all__ = ["dag_dot", "dag_tree", "spanning_parents", "task_label"]

TASK_STYLES = {
    "blocked": "dim",
    "ready": "yellow",
    "queued": "yellow",
    "running": "cyan",
    "succeeded": "green",
    "failed": "red",
    "upstream_failed": "red",
    "skipped": "dim",
    "cancelled": "dim",
}


def spanning_parents(
    tasks: Sequence[tuple[str, Sequence[str]]],
) -> dict[str, str | None]:
    """Each task's parent in the drawn tree: its dependency that comes last in
    the definition (None for a root). Every task appears exactly once."""
    order = {name: i for i, (name, _) in enumerate(tasks)}
    out: dict[str, str | None] = {}
    for name, deps in tasks:
        known = [d for d in deps if d in order]
        out[name] = max(known, key=order.__getitem__) if known else None
    return out


def task_label(task: Any, others: Sequence[str] = ()) -> str:
    """``name  state  attempts 2  rc 1  0:00:03  output: ...``, escaped."""
    parts = [f"[bold]{escape(task.name)}[/]"]
    state = getattr(task, "state", None)
    if state is not None:
        style = TASK_STYLES.get(state, "")
        parts.append(f"[{style}]{state}[/]" if style else state)
        if task.attempts > 1:
            parts.append(f"attempts {task.attempts}")
        if task.completions > 1:
            parts.append(f"items {task.succeeded_items}/{task.completions}")
        if task.rc not in (None, 0):
            parts.append(f"rc {task.rc}")
        if task.started_at:
            parts.append(
                fmt.duration((task.ended_at or 0) - task.started_at)
                if task.ended_at
                else "running"
            )
        if task.output:
            parts.append(f"output: {escape(fmt.shorten(task.output, 40))}")
        if task.reason and state not in ("succeeded",):
            parts.append(f"[dim]{escape(fmt.shorten(task.reason, 60))}[/]")
    if others:
        parts.append(f"[dim](also after {escape(', '.join(others))})[/]")
    return "  ".join(parts)


def dag_tree(title: str, tasks: Sequence[Any]) -> Tree:
    """A rich tree of tasks (objects with ``name`` and ``dependencies``, and
    the run fields of ``TaskStatus`` when drawing a run)."""
    parents = spanning_parents([(t.name, t.dependencies) for t in tasks])
    root = Tree(title)
    nodes: dict[str, Tree] = {}
    pending = list(tasks)
    while pending:  # parents come first in definition order, but be safe
        later = []
        for task in pending:
            parent = parents[task.name]
            if parent is not None and parent not in nodes:
                later.append(task)
                continue
            others = [d for d in task.dependencies if d != parent]
            node = (nodes[parent] if parent else root).add(task_label(task, others))
            nodes[task.name] = node
        if len(later) == len(pending):  # a cycle cannot be stored; stop anyway
            break
        pending = later
    return root


def dag_dot(name: str, tasks: Sequence[Any]) -> str:
    """The DAG in Graphviz DOT (names quoted as JSON strings)."""
    lines = [f"digraph {json.dumps(name)} {{"]
    for t in tasks:
        label = t.name + (f"\n{t.state}" if getattr(t, "state", None) else "")
        lines.append(f"  {json.dumps(t.name)} [label={json.dumps(label)}];")
        lines += [f"  {json.dumps(d)} -> {json.dumps(t.name)};" for d in t.dependencies]
    lines.append("}")
    return "\n".join(lines)
