"""``xqute apply -f FILE.yaml``: definitions (and later layers' settings) from
one YAML file, validated as a whole, then stored in one transaction.

The file's top-level blocks are handled each by one function in ``BLOCKS``
(later layers add theirs, and their store/preview in ``EXTENSIONS``):

- ``definitions``: ``templates``, ``jobs``, ``workflows``, each a map of name
  to spec (the models' fields);
- ``scheduler``: the seed's ``job_defaults`` (``timeout``, ``retries``,
  ``backoff``: for the file's jobs and templates that do not set them),
  ``workflow_defaults`` (``parallelism``, ``failure_policy``, ``timeout``),
  ``timezone`` and ``schedule_defaults`` (schedule_yaml.py);
- ``workflows``: the seed's ``defaults`` (``retry``, ``timeout`` for inline
  tasks) and ``hooks`` (``pre_execute``/``post_execute`` of every workflow of
  the file that sets none);
- ``version``: 1.

Idempotent: an unchanged definition is not stored again (no new version).
Every problem is reported at once, each as ``FILE:LINE: where: what``, the
line found from the YAML's own node marks (``yaml_source.py``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import DefinitionError
from ..monitoring import applied
from ..queue.db import Database
from ..queue.wake import notify
from . import catalog, resource_blocks, schedule_yaml
from . import definitions as defs
from .parse import dump, parse
from .resource_api import kind_of
from .validate import did_you_mean
from .yaml_source import field_path, line_of, load_yaml, locate, read_source

__all__ = ["BLOCKS", "ApplyResult", "Change", "apply", "load_yaml"]

Path_ = tuple[Any, ...]
_KIND_OF = {"templates": "template", "jobs": "job", "workflows": "workflow"}


@dataclass(frozen=True, slots=True)
class Change:
    kind: str
    name: str
    namespace: str
    action: str  # created, updated, unchanged
    version: int | None
    diff: str = ""


@dataclass
class ApplyResult:
    source: str
    dry_run: bool
    changes: list[Change] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        changes = [
            {k: getattr(c, k) for k in Change.__dataclass_fields__}
            for c in self.changes
        ]
        return {"source": self.source, "dry_run": self.dry_run, "changes": changes}


@dataclass
class Plan:
    """What the blocks gathered: definitions (as dicts, with where they are),
    defaults, and problems."""

    items: list[tuple[str, dict[str, Any], Path_]] = field(default_factory=list)
    job_defaults: dict[str, Any] = field(default_factory=dict)
    workflow_defaults: dict[str, Any] = field(default_factory=dict)
    task_defaults: dict[str, Any] = field(default_factory=dict)
    hooks: dict[str, Any] | None = None
    schedule_defaults: dict[str, Any] = field(default_factory=dict)
    problems: list[tuple[Path_, str]] = field(default_factory=list)
    #: quotas, classes, queues, autoscaling policies (``resource_blocks.py``)
    policies: list[tuple[Any, Path_]] = field(default_factory=list)
    #: (kind, name) of policies the file turns off (``auto_scaling.enabled:
    #: false``): deleted if stored
    disabled: list[tuple[str, str]] = field(default_factory=list)
    monitoring: dict[str, Any] | None = None  # monitoring/applied.py


# ---------------------------------------------------------------------- blocks
def _definitions(value: Any, plan: Plan, path: Path_) -> None:
    for key, items in _mapping(value, path, plan).items():
        if key not in _KIND_OF:
            plan.problems.append(((*path, key), _unknown(key, _KIND_OF)))
            continue
        for name, spec in _mapping(items, (*path, key), plan).items():
            where = (*path, key, name)
            if not isinstance(spec, dict):
                plan.problems.append(
                    (where, "must be a map of the definition's fields")
                )
                continue
            if "name" in spec and spec["name"] != name:
                plan.problems.append(
                    (
                        (*where, "name"),
                        f"{spec['name']!r} differs from its key {name!r}",
                    )
                )
            plan.items.append((_KIND_OF[key], {**spec, "name": name}, where))


def _scheduler(value: Any, plan: Plan, path: Path_) -> None:
    for key, sub in _mapping(value, path, plan).items():
        handler = SCHEDULER_KEYS.get(key)
        if handler is None:
            plan.problems.append(((*path, key), _unknown(key, SCHEDULER_KEYS)))
        else:
            handler(sub, plan, (*path, key))


def _job_defaults(value: Any, plan: Plan, path: Path_) -> None:
    data = _mapping(value, path, plan)
    allowed = {"timeout", "retries", "backoff"}
    for key in data:
        if key not in allowed:
            plan.problems.append(((*path, key), _unknown(key, allowed)))
    if "timeout" in data:
        plan.job_defaults["timeout"] = data["timeout"]
    if data.get("retries"):
        backoff = data.get("backoff")
        plan.job_defaults["restart_policy"] = {
            "policy": "on_failure",
            "max_retries": data["retries"],
            **(
                {"backoff": {"type": backoff} if isinstance(backoff, str) else backoff}
                if backoff
                else {}
            ),
        }
    keys = {
        ("restart_policy", "max_retries"): ("retries",),
        ("restart_policy", "backoff"): ("backoff",),
        ("restart_policy",): ("retries",),
    }
    probe = {"name": "defaults", "command": ["true"], **plan.job_defaults}
    if not _probe(plan, "job", probe, path, keys):
        plan.job_defaults.clear()  # said once here, not again at each job


def _workflow_defaults(value: Any, plan: Plan, path: Path_) -> None:
    data = _mapping(value, path, plan)
    names = {
        "parallelism": "parallelism",
        "failure_policy": "on_failure",
        "on_failure": "on_failure",
        "timeout": "timeout",
    }
    keys = {}
    for key, val in data.items():
        if key not in names:
            plan.problems.append(((*path, key), _unknown(key, names)))
        else:
            plan.workflow_defaults[names[key]] = val
            keys[(names[key],)] = (key,)
    probe = {"name": "defaults", "tasks": [_PROBE_TASK], **plan.workflow_defaults}
    if not _probe(plan, "workflow", probe, path, keys):
        plan.workflow_defaults.clear()


def _workflows(value: Any, plan: Plan, path: Path_) -> None:
    for key, sub in _mapping(value, path, plan).items():
        if key == "defaults":
            data = _mapping(sub, (*path, key), plan)
            for k, v in data.items():
                if k in ("retry", "timeout"):
                    plan.task_defaults[k] = v
                else:
                    plan.problems.append(
                        ((*path, key, k), _unknown(k, ("retry", "timeout")))
                    )
        elif key == "hooks":
            plan.hooks = _mapping(sub, (*path, key), plan)
            probe = {"name": "defaults", "tasks": [_PROBE_TASK], "hooks": plan.hooks}
            if not _probe(plan, "workflow", probe, path, {}):
                plan.hooks = None
        else:
            plan.problems.append(((*path, key), _unknown(key, ("defaults", "hooks"))))
    if plan.task_defaults:
        task = {**_PROBE_TASK, **plan.task_defaults}
        probe = {"name": "defaults", "tasks": [task]}
        keys = {("tasks", 0): ()}
        if not _probe(plan, "workflow", probe, (*path, "defaults"), keys):
            plan.task_defaults.clear()


_PROBE_TASK = {"name": "t", "command": ["true"]}


def _probe(
    plan: Plan,
    kind: str,
    spec: dict[str, Any],
    path: Path_,
    keys: Mapping[Path_, Path_],
) -> bool:
    """Check a defaults block by parsing a minimal ``kind`` with it; each
    problem goes to the block's own key (``keys``: a field path prefix of the
    model -> the key path in the block), not to every definition it would be
    merged into. False if there was any."""
    try:
        parse(catalog.KINDS[kind], spec, "defaults")
    except DefinitionError as exc:
        for where, msg in exc.problems:
            at = field_path(where)
            for n in range(len(at), 0, -1):
                if at[:n] in keys:
                    at = keys[at[:n]] + at[n:]
                    break
            plan.problems.append(((*path, *at), msg))
        return False
    return True


def _version(value: Any, plan: Plan, path: Path_) -> None:
    if value != 1:
        plan.problems.append((path, f"version {value!r} is not supported (use 1)"))


#: top-level block -> handler(value, plan, path); later layers add theirs
BLOCKS: dict[str, Callable[[Any, Plan, Path_], None]] = {
    "version": _version,
    "definitions": _definitions,
    "scheduler": _scheduler,
    "workflows": _workflows,
    "resources": resource_blocks.resources_block,
    "monitoring": applied.block,
}
EXTENSIONS = (resource_blocks, applied)  # with store() and preview()
#: keys of the ``scheduler`` block -> handler
SCHEDULER_KEYS: dict[str, Callable[[Any, Plan, Path_], None]] = {
    "job_defaults": _job_defaults,
    "workflow_defaults": _workflow_defaults,
    "queues": resource_blocks.queues_block,
    "timezone": schedule_yaml.timezone,
    "schedule_defaults": schedule_yaml.defaults,
}


# ---------------------------------------------------------------------- apply
def apply(
    db: Database,
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    dry_run: bool = False,
) -> ApplyResult:
    """Apply a YAML file (a path), YAML text or a dict; ``DefinitionError``
    listing every problem with its file, line and key."""
    name, data, lines = read_source(source)
    plan = Plan()
    for key, value in data.items():
        handler = BLOCKS.get(key)
        if handler is None:
            plan.problems.append(((key,), _unknown(key, BLOCKS)))
        else:
            handler(value, plan, (key,))
    models: dict[str, dict[str, Any]] = {k: {} for k in ("template", "job", "workflow")}
    checked = []
    order = {"template": 0, "job": 1, "workflow": 2}
    parsed = []
    for kind, spec, where in sorted(plan.items, key=lambda i: order[i[0]]):
        spec = _with_defaults(kind, spec, plan)
        if spec["name"] in models[kind]:
            plan.problems.append((where, f"{kind} {spec['name']!r} is defined twice"))
            continue
        try:
            model = parse(catalog.KINDS[kind], spec, f"{kind} {spec['name']!r}")
        except DefinitionError as exc:
            plan.problems += [(where + field_path(w), m) for w, m in exc.problems]
            continue
        models[kind][model.name] = model
        parsed.append((kind, model, where))
    for obj, _ in plan.policies:  # the file's classes and queues, by kind
        models.setdefault(kind_of(obj), {})[obj.name] = obj
    for kind, model, where in parsed:  # again, seeing the whole file
        try:
            checked.append((kind, catalog.check(db, kind, model, also=models), where))
        except DefinitionError as exc:
            plan.problems += [(where + field_path(w), m) for w, m in exc.problems]
    resource_blocks.check(db, plan)
    if plan.problems:
        located = sorted(
            (
                (line_of(lines, p), locate(name, lines, p), msg)
                for p, msg in plan.problems
            ),
            key=lambda x: x[0],
        )
        raise DefinitionError(name, [(where, msg) for _, where, msg in located])
    result = ApplyResult(name, dry_run)
    if dry_run:
        for kind, model, _ in checked:
            result.changes.append(_preview(db, kind, model))
        result.changes += [Change(*c) for e in EXTENSIONS for c in e.preview(db, plan)]
        return result
    now = time.time()

    def write(conn: Any) -> list[Change]:
        out = []
        for kind, model, _ in checked:
            info = catalog.store(conn, kind, model, now)
            action = (
                "unchanged"
                if not info.changed
                else ("created" if info.version == 1 else "updated")
            )
            out.append(Change(kind, model.name, model.namespace, action, info.version))
        return out + [Change(*c) for e in EXTENSIONS for c in e.store(conn, plan, now)]

    result.changes = db.write(write)
    if plan.policies or plan.disabled:
        notify(db.path)  # pools re-read the resource policy at once
    return result


def _with_defaults(kind: str, spec: dict[str, Any], plan: Plan) -> dict[str, Any]:
    spec = schedule_yaml.with_defaults(spec, plan)
    if kind in ("job", "template"):
        return {**plan.job_defaults, **spec}
    spec = {**plan.workflow_defaults, **spec}
    if plan.hooks is not None and "hooks" not in spec:
        spec["hooks"] = plan.hooks
    if plan.task_defaults and isinstance(spec.get("tasks"), list):
        spec["tasks"] = [
            {**plan.task_defaults, **t}
            if isinstance(t, dict) and ("command" in t or "shell" in t)
            else t
            for t in spec["tasks"]
        ]
    return spec


def _preview(db: Database, kind: str, model: Any) -> Change:
    action, version, diff = defs.preview(
        db, kind, model.name, dump(model), model.namespace
    )
    return Change(kind, model.name, model.namespace, action, version, diff)


def _mapping(value: Any, path: Path_, plan: Plan) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        plan.problems.append((path, f"must be a map, got {type(value).__name__}"))
        return {}
    return value


def _unknown(key: Any, allowed: Any) -> str:
    names = sorted(allowed)
    return (
        f"unknown key {key!r}"
        + did_you_mean(str(key), names)
        + f"; allowed: {', '.join(names)}"
    )
