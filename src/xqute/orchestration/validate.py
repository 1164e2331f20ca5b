"""Checks of a definition against the others, collecting EVERY problem.

``check_template``, ``check_job`` and ``check_workflow`` return a list of
``(where, what)`` problems (empty: valid); ``Orchestrator.create_*`` raises
them together as one ``DefinitionError``. They are pure: the caller passes the
templates and jobs the definition may reference, and the capacities of the
pools that serve the db (a request none of them can ever satisfy would wait
forever).

Checked: duplicate names, unknown dependencies and cycles (graphlib), unknown
templates/jobs, unknown or missing required parameters, ``#{...}`` references
(unknown forms, undeclared parameters, outputs of tasks that are not upstream
or run as parallel items, references inside quotes in shell code), requests
larger than every pool, a priority class, queue or resource class that is not
defined (``check_policy_names``). Near misses get "did you mean".
"""

from __future__ import annotations

import difflib
import graphlib
from collections.abc import Collection, Iterator, Mapping, Sequence

from ..errors import RenderError
from .models import JobSpec, JobTemplate, Task, Workflow
from .refs import classify, quoted_references, references
from .specs import ENV_RE, Parameter, ResourceRequirements

__all__ = [
    "POLICY_NAMES",
    "Capacity",
    "check_job",
    "check_policy_names",
    "check_template",
    "check_workflow",
    "did_you_mean",
]

Problem = tuple[str, str]
#: what one pool can give one job: (cpus, mem_mb, gpus)
Capacity = tuple[int, int, int]


def did_you_mean(word: str, candidates: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for a near miss, else ``""``."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


#: what a template, job or workflow may name in the resource policy (the
#: fields are named after the definition kinds)
POLICY_NAMES = ("priority_class", "queue", "resource_class")


def check_policy_names(
    model: JobTemplate | JobSpec | Workflow, known: Mapping[str, Collection[str]]
) -> list[Problem]:
    """The priority class, queue and resource class a template, job or
    workflow names must exist (``known``: kind -> the names defined)."""
    problems: list[Problem] = []
    for kind in POLICY_NAMES:
        name = getattr(model, kind, None)
        names = sorted(known.get(kind, ()))
        if name is not None and name not in names:
            what = kind.replace("_", " ")
            problems.append(
                (kind, f"unknown {what} {name!r}; known: {', '.join(names) or 'none'}")
            )
    return problems


def check_template(
    t: JobTemplate, capacities: Sequence[Capacity] = ()
) -> list[Problem]:
    problems = list(_param_decls(t.parameters, "parameters"))
    declared = [p.name for p in t.parameters]
    problems += _refs_of(t, "", params=declared, upstream=None)
    problems += _fits(t.resources, "resources", capacities)
    return problems


def check_job(
    job: JobSpec,
    templates: Mapping[str, JobTemplate],
    capacities: Sequence[Capacity] = (),
) -> list[Problem]:
    problems: list[Problem] = []
    if job.template is not None:
        tpl = templates.get(job.template)
        if tpl is None:
            problems.append(("template", _unknown("template", job.template, templates)))
        else:
            problems += _bind(tpl, job.parameters, "parameters")
    problems += _refs_of(job, "", params=(), upstream=None)
    if job.resources is not None:
        problems += _fits(job.resources, "resources", capacities)
    return problems


def check_workflow(
    wf: Workflow,
    templates: Mapping[str, JobTemplate],
    jobs: Mapping[str, JobSpec],
    capacities: Sequence[Capacity] = (),
) -> list[Problem]:
    problems = list(_param_decls(wf.parameters, "parameters"))
    names = [t.name for t in wf.tasks]
    seen: dict[str, int] = {}
    for i, task in enumerate(wf.tasks):
        if task.name in seen:
            problems.append(
                (
                    f"tasks[{i}].name",
                    f"duplicate task {task.name!r} (also tasks[{seen[task.name]}])",
                )
            )
        seen.setdefault(task.name, i)
    graph: dict[str, set[str]] = {name: set() for name in names}
    for i, task in enumerate(wf.tasks):
        for j, dep in enumerate(task.dependencies):
            where = f"tasks[{i}].dependencies[{j}]"
            if dep == task.name:
                problems.append((where, f"task {dep!r} depends on itself"))
            elif dep not in seen:
                problems.append((where, _unknown("task", dep, names)))
            else:
                graph[task.name].add(dep)
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        problems.append(("tasks", f"the dependencies form a cycle: {cycle}"))
        order = []
    upstream = _ancestors(graph, order)
    parallel = {t.name for t in wf.tasks if _parallel(t, jobs)}
    wf_params = [p.name for p in wf.parameters]
    for key, value in wf.env.items():
        problems += _refs_in(value, f"env.{key}", wf_params, set(), set(), shell=False)
    for i, task in enumerate(wf.tasks):
        where = f"tasks[{i}]"
        ups = upstream.get(task.name, set())
        problems += _refs_of(task, where + ".", wf_params, ups, parallel)
        for key, value in task.parameters.items():
            problems += _refs_in(
                value,
                f"{where}.parameters.{key}",
                wf_params,
                ups,
                parallel,
                shell=False,
            )
        resources = task.resources
        if task.job is not None:
            if task.job in templates:
                tpl = templates[task.job]
                problems += _bind(tpl, task.parameters, f"{where}.parameters")
                resources = resources or tpl.resources
            elif task.job in jobs:
                spec = jobs[task.job]
                tpl = templates.get(spec.template) if spec.template else None
                if spec.template is None and task.parameters:
                    problems.append(
                        (
                            f"{where}.parameters",
                            f"job {task.job!r} takes"
                            " no parameters (it is not a template)",
                        )
                    )
                elif tpl is not None:
                    bound = {**spec.parameters, **task.parameters}
                    problems += _bind(tpl, bound, f"{where}.parameters")
                resources = resources or spec.resources
            else:
                problems.append(
                    (
                        f"{where}.job",
                        _unknown("template or job", task.job, [*templates, *jobs]),
                    )
                )
        if resources is not None:
            problems += _fits(resources, f"{where}.resources", capacities)
    return problems


# ---------------------------------------------------------------------- helpers
def _unknown(what: str, name: str, candidates: Sequence[str] | Mapping) -> str:
    return f"unknown {what} {name!r}" + did_you_mean(name, list(candidates))


def _param_decls(params: Sequence[Parameter], where: str) -> Iterator[Problem]:
    seen: set[str] = set()
    for i, p in enumerate(params):
        if p.name in seen:
            yield f"{where}[{i}].name", f"duplicate parameter {p.name!r}"
        seen.add(p.name)


def _bind(tpl: JobTemplate, given: Mapping[str, str], where: str) -> list[Problem]:
    """Parameters given to a template: unknown ones and missing required ones.
    (A value that holds a reference is checked against ``choices``/``pattern``
    only once rendered, when the task is queued.)"""
    problems = []
    declared = {p.name: p for p in tpl.parameters}
    for key, value in given.items():
        if key not in declared:
            problems.append(
                (
                    f"{where}.{key}",
                    _unknown(f"parameter of template {tpl.name!r}:", key, declared),
                )
            )
        elif not references(value) and (why := declared[key].check(value)):
            problems.append((f"{where}.{key}", why))
    for p in tpl.parameters:
        if p.required and p.name not in given:
            problems.append(
                (where, f"template {tpl.name!r} requires parameter {p.name!r}")
            )
    return problems


def _refs_of(
    item: JobTemplate | JobSpec | Task,
    prefix: str,
    params: Sequence[str],
    upstream: set[str] | None,
    parallel: set[str] = frozenset(),  # type: ignore[assignment]
) -> list[Problem]:
    """References in the command, shell code and env of a runnable item."""
    ups = upstream if upstream is not None else set()
    problems = []
    for i, arg in enumerate(item.command or ()):
        problems += _refs_in(
            arg, f"{prefix}command[{i}]", params, ups, parallel, shell=False
        )
    if item.shell is not None:
        problems += _refs_in(
            item.shell, f"{prefix}shell", params, ups, parallel, shell=True
        )
    for key, value in item.env.items():
        if not ENV_RE.match(key):
            problems.append(
                (
                    f"{prefix}env.{key}",
                    "invalid environment variable name: use letters, digits and _",
                )
            )
        problems += _refs_in(
            value, f"{prefix}env.{key}", params, ups, parallel, shell=False
        )
    return problems


def _refs_in(
    text: str,
    where: str,
    params: Sequence[str],
    upstream: set[str],
    parallel: set[str],
    *,
    shell: bool,
) -> list[Problem]:
    problems = []
    for expr in references(text):
        try:
            kind, name = classify(expr)
        except RenderError as exc:
            problems.append((where, str(exc)))
            continue
        if kind == "param" and name not in params:
            problems.append(
                (
                    where,
                    f"#{{{expr}}}: unknown parameter {name!r}"
                    + did_you_mean(name, params),
                )
            )
        elif kind == "output" and name not in upstream:
            problems.append(
                (
                    where,
                    f"#{{{expr}}}: task {name!r} is not upstream of"
                    " this one (add it to the dependencies)"
                    + did_you_mean(name, sorted(upstream)),
                )
            )
        elif kind == "output" and name in parallel:
            problems.append(
                (
                    where,
                    f"#{{{expr}}}: task {name!r} runs parallel items;"
                    " pass their results through files",
                )
            )
    if shell:
        for expr in quoted_references(text):
            problems.append(
                (
                    where,
                    f"#{{{expr}}} is inside quotes: write it bare,"
                    " it is substituted as one shell-quoted word",
                )
            )
    return problems


def _ancestors(graph: Mapping[str, set[str]], order: list[str]) -> dict[str, set[str]]:
    """Every task's transitive dependencies (``order``: parents first)."""
    out: dict[str, set[str]] = {}
    for name in order:
        acc: set[str] = set()
        for parent in graph[name]:
            acc.add(parent)
            acc |= out.get(parent, set())
        out[name] = acc
    return out


def _parallel(task: Task, jobs: Mapping[str, JobSpec]) -> bool:
    par = task.parallelism
    if par is None and task.job in jobs:
        par = jobs[task.job].parallelism  # type: ignore[index]
    return par is not None and par.completions > 1


def _fits(
    res: ResourceRequirements, where: str, capacities: Sequence[Capacity]
) -> list[Problem]:
    if not capacities:
        return []
    if any(res.cpu <= c and res.memory <= m and res.gpu <= g for c, m, g in capacities):
        return []
    best = max(capacities)
    return [
        (
            where,
            f"asks for cpu {res.cpu}, memory {res.memory}M, gpu {res.gpu}:"
            f" no pool serving this db can ever give that (largest: cpu {best[0]},"
            f" memory {best[1]}M, gpu {best[2]})",
        )
    ]
