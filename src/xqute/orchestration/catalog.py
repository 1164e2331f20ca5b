"""Creating, reading and deleting definitions, validated against each other.

The shell around ``validate.py`` (pure) and ``definitions.py`` (the table):
parse the model, load what it may reference, collect every problem, and store
the new version (with a workflow's edges) in one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import DefinitionError, DefinitionNotFoundError
from ..queue.db import Database
from ..queue.schema import UNLIMITED
from ..queue.submit_policy import read
from . import definitions as defs
from . import events, schedule_store
from .models import JobSpec, JobTemplate, Workflow
from .parse import dump, parse
from .plan import workflow_edges
from .validate import (
    POLICY_NAMES,
    Capacity,
    check_job,
    check_policy_names,
    check_template,
    check_workflow,
    did_you_mean,
)

__all__ = [
    "KINDS",
    "DefinitionInfo",
    "capacities",
    "check",
    "create",
    "delete",
    "load",
    "names",
    "store",
]

#: kind -> model
KINDS: dict[str, type[Any]] = {
    "template": JobTemplate,
    "job": JobSpec,
    "workflow": Workflow,
}


@dataclass(frozen=True, slots=True)
class DefinitionInfo:
    """What ``create_*`` stored: the version, and whether it is a new one (the
    same spec again is not stored twice)."""

    kind: str
    name: str
    namespace: str
    version: int
    id: int
    changed: bool
    #: the run ``create_job`` started (a job without a schedule runs at once)
    run_id: int | None = None


def capacities(db: Database) -> list[Capacity]:
    """What one job may get from each live pool serving the db: (cpus, MB, gpus).
    A cluster pool's GPUs are not indexed here: unlimited."""
    out = []
    for cpus, mem_mb, gpu_ids, backend in db.query(
        "SELECT cpus, mem_mb, gpu_ids, backend FROM worker_nodes"
        " WHERE state IN ('running', 'stopping')"
    ):
        gpus = len(gpu_ids.split(",")) if gpu_ids else 0
        if backend != "local":
            gpus = UNLIMITED
        out.append((cpus or UNLIMITED, mem_mb or UNLIMITED, gpus))
    return out


def _catalog(db: Database, kind: str, namespace: str) -> dict[str, Any]:
    model = KINDS[kind]
    return {
        name: model.model_validate(spec)
        for name, spec in defs.latest_specs(db, kind, namespace).items()
    }


def check(
    db: Database,
    kind: str,
    value: Any,
    also: Mapping[str, Mapping[str, Any]] | None = None,
) -> Any:
    """The validated model of ``value``; DefinitionError with every problem.
    ``also``: kind -> {name: model} defined alongside (an applied file, its
    priority classes, queues and resource classes too), seen as if stored."""
    model = parse(KINDS[kind], value, f"{kind} {_name_of(value)!r}")
    caps = capacities(db)
    also = also or {}

    def catalog_of(k: str) -> dict[str, Any]:
        found = _catalog(db, k, model.namespace)
        found.update(
            {n: m for n, m in also.get(k, {}).items() if m.namespace == model.namespace}
        )
        return found

    if kind == "template":
        problems = check_template(model, caps)
    elif kind == "job":
        problems = check_job(model, catalog_of("template"), caps)
    else:
        problems = check_workflow(
            model, catalog_of("template"), catalog_of("job"), caps
        )
    problems += check_policy_names(model, _policy_names(db, also))
    problems += _name_taken(db, kind, model, also)
    if problems:
        raise DefinitionError(f"{kind} {model.name!r}", problems)
    return model


def _name_taken(
    db: Database, kind: str, model: Any, also: Mapping[str, Mapping[str, Any]]
) -> list[tuple[str, str]]:
    """A job and a template may not share a name: ``Task(job=NAME)`` names
    either, and could not tell them apart."""
    other = {"job": "template", "template": "job"}.get(kind)
    if other is None:
        return []
    mine = also.get(other, {}).get(model.name)
    if (mine is None or mine.namespace != model.namespace) and defs.get(
        db, other, model.name, model.namespace
    ) is None:
        return []
    return [
        (
            "name",
            f"{model.name!r} is the name of a {other} too (a task's job= names"
            " either): give this one another name",
        )
    ]


def _policy_names(
    db: Database, also: Mapping[str, Mapping[str, Any]]
) -> dict[str, set[str]]:
    """kind -> the names of the priority classes, queues and resource classes
    defined (and in ``also``: an applied file's)."""
    stored = read(db, POLICY_NAMES)
    return {kind: {*stored[kind], *also.get(kind, {})} for kind in POLICY_NAMES}


def store(conn: Any, kind: str, model: Any, now: float) -> DefinitionInfo:
    """Store a validated model as its latest version, inside the caller's
    transaction (with a workflow's edges and a job's or workflow's schedule)."""
    spec = dump(model)
    row, changed = defs.put(conn, kind, model.name, spec, now, model.namespace)
    if changed and kind == "workflow":
        defs.put_edges(conn, row.id, workflow_edges(spec))
    if kind in ("job", "workflow"):  # its schedule (or none) in the same tx
        schedule_store.sync(
            conn, kind, model.namespace, model.name, model.schedule, now
        )
    if changed:
        events.append(
            conn,
            f"definition.{'created' if row.version == 1 else 'updated'}",
            now,
            namespace=model.namespace,
            data={"kind": kind, "name": model.name, "version": row.version},
        )
    return DefinitionInfo(
        kind, model.name, model.namespace, row.version, row.id, changed
    )


def create(db: Database, kind: str, value: Any) -> tuple[DefinitionInfo, Any]:
    """Validate and store ``value`` (a model or a dict) as the latest version."""
    model = check(db, kind, value)
    now = time.time()
    return db.write(lambda conn: store(conn, kind, model, now)), model


def load(
    db: Database, kind: str, name: str, namespace: str = "default"
) -> tuple[defs.Definition, Any]:
    """(the stored row, its model) of the latest live version."""
    row = defs.get(db, kind, name, namespace)
    if row is None:
        raise DefinitionNotFoundError(
            f"no {kind} {name!r}"
            + (f" in namespace {namespace!r}" if namespace != "default" else "")
            + did_you_mean(name, names(db, kind, namespace))
        )
    return row, KINDS[kind].model_validate(row.spec)


def names(db: Database, kind: str, namespace: str = "default") -> list[str]:
    return [d.name for d in defs.list_latest(db, kind, namespace)]


def delete(db: Database, kind: str, name: str, namespace: str = "default") -> None:
    now = time.time()

    def write(conn: Any) -> bool:
        gone = defs.delete(conn, kind, name, now, namespace)
        if gone:
            schedule_store.retire(conn, kind, namespace, name, now)
            events.append(
                conn,
                "definition.deleted",
                now,
                namespace=namespace,
                data={"kind": kind, "name": name},
            )
        return gone

    if not db.write(write):
        load(db, kind, name, namespace)  # raises the "no such ..." error


def _name_of(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("name", "?"))
    return str(getattr(value, "name", "?"))
