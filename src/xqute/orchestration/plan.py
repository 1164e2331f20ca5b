"""Plans: what each task of a run will run, compiled from the stored specs when
the run is created, and rendered into a queue job's command and environment
when the task is queued. Pure functions over JSON-like dicts (the daemon runs
them without pydantic).

A plan is a dict stored in ``run_tasks.plan``: the command (``command`` argv or
``shell`` code, ``#{...}`` unresolved), its environment, resources, restart
policy, success codes, parallelism and output limit, merged from the task, the
template or job it names, and the workflow. A task that names a template binds
the template's parameters (``bind``, values in the workflow's scope, e.g.
``#{extract.output}``); the template's command then sees them as
``#{params.NAME}``. Rendering resolves both levels in one pass each: a
substituted value is never scanned again.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import RenderError
from .refs import DEFAULT_OUTPUT_MAX_BYTES, classify, references, render, render_shell

__all__ = [
    "bind_params",
    "compile_job",
    "compile_workflow",
    "hook_argv",
    "in_container",
    "render_task",
    "workflow_edges",
]

JOB_TASK = "main"  # the one task of a job run
_ENV_SAFE = re.compile(r"[^A-Za-z0-9_]")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")  # specs.PARAM_RE


def bind_params(
    decls: Sequence[Mapping[str, Any]], given: Mapping[str, Any], *, free: bool = False
) -> tuple[dict[str, str], list[str]]:
    """(values with defaults applied, problems): unknown names, missing
    required ones, values outside ``choices`` or not matching ``pattern``.

    ``free``: a workflow that declares no parameters takes any (as text; its
    tasks get them as ``XQUTE_PARAM_<NAME>``), as the issue's
    ``execute_workflow("data-pipeline", parameters={"day": ...})`` does."""
    free = free and not decls
    if free:
        decls = [{"name": k} for k in given if _PARAM_NAME.fullmatch(str(k))]
    declared = {d["name"]: d for d in decls}
    problems = [
        f"parameter name {k!r} is not valid (a letter or _, then letters, digits, _)"
        if free
        else f"unknown parameter {k!r} (declared: {', '.join(declared) or 'none'})"
        for k in given
        if k not in declared
    ]
    values: dict[str, str] = {}
    for name, d in declared.items():
        if name in given:
            value = given[name]
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                problems.append(f"parameter {name!r}: {value!r} must be text")
                continue
            value = str(value)
        elif d.get("default") is not None:
            value = d["default"]
        elif d.get("required"):
            problems.append(f"missing required parameter {name!r}")
            continue
        else:
            value = ""
        choices, pattern = d.get("choices"), d.get("pattern")
        if choices is not None and value not in choices:
            problems.append(f"parameter {name}={value!r} is not one of {choices}")
        elif pattern is not None and re.fullmatch(pattern, value) is None:
            problems.append(f"parameter {name}={value!r} does not match {pattern}")
        values[name] = value
    return values, problems


def compile_workflow(
    wf: Mapping[str, Any],
    templates: Mapping[str, Mapping[str, Any]],
    jobs: Mapping[str, Mapping[str, Any]],
) -> list[tuple[str, dict[str, Any]]]:
    """[(task name, plan)] of a stored workflow spec, hook tasks included."""
    out = []
    for seq, task in enumerate(wf["tasks"]):
        out.append((task["name"], _task_plan(seq, task, wf, templates, jobs)))
    hooks = wf.get("hooks") or {}
    roots = [name for name, p in out if not p["deps"]]
    names = [name for name, _ in out]
    for i, hook in enumerate(h for h in hooks.get("pre_execute", ()) if h):
        name = f":pre_execute:{i}"
        for n, p in out:
            if n in roots:
                p["deps"].append(name)
        out.insert(i, (name, _hook_plan(-1 - i, hook, "pre", [])))
    for i, hook in enumerate(h for h in hooks.get("post_execute", ()) if h):
        plan = _hook_plan(len(out), hook, "post", list(names))
        out.append((f":post_execute:{i}", plan))
    return out


def workflow_edges(wf: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (parent, child) edges of a stored workflow spec, as its run's plans
    have them: the dependencies, and each pre_execute hook before every root."""
    edges = [(dep, t["name"]) for t in wf["tasks"] for dep in t.get("dependencies", ())]
    roots = [t["name"] for t in wf["tasks"] if not t.get("dependencies")]
    hooks = [h for h in (wf.get("hooks") or {}).get("pre_execute", ()) if h]
    edges += [(f":pre_execute:{i}", root) for i in range(len(hooks)) for root in roots]
    return edges


def compile_job(
    job: Mapping[str, Any], templates: Mapping[str, Mapping[str, Any]]
) -> list[tuple[str, dict[str, Any]]]:
    """The one-task plan of a job run."""
    task = {"name": JOB_TASK, "job": job["name"]}
    return [(JOB_TASK, _task_plan(0, task, {}, templates, {job["name"]: job}))]


def _task_plan(
    seq: int,
    task: Mapping[str, Any],
    wf: Mapping[str, Any],
    templates: Mapping[str, Mapping[str, Any]],
    jobs: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    layers: list[Mapping[str, Any]] = [task]  # most specific first
    bind = None
    decls: list[Any] = []
    source: Mapping[str, Any] = task
    ref = task.get("job")
    if ref is not None:
        spec = templates.get(ref)
        if spec is None:
            job = jobs[ref]
            layers.append(job)
            source = job
            bind = dict(job.get("parameters", {}))
            spec = templates.get(job["template"]) if job.get("template") else None
            if spec is None:
                bind = None
        if spec is not None:
            layers.append(spec)
            source = spec
            decls = spec.get("parameters", [])
            bind = {**(bind or {}), **task.get("parameters", {})}
    pick = _picker(layers)
    res = pick("resources") or {}
    par = pick("parallelism") or {}
    plan = {
        "seq": seq,
        "deps": list(task.get("dependencies", ())),
        "rule": task.get("trigger_rule", "all_success"),
        "command": source.get("command"),
        "shell": source.get("shell"),
        "bind": bind,
        "decls": decls,
        "env_own": {
            k: v for layer in layers[:0:-1] for k, v in layer.get("env", {}).items()
        },
        "env": {**wf.get("env", {}), **task.get("env", {})},
        "cwd": pick("working_dir"),
        "cpus": res.get("cpu", 1),
        "mem_mb": res.get("memory", 0),
        "gpus": res.get("gpu", 0),
        "timeout_s": pick("timeout"),
        "priority": pick("priority") or wf.get("priority", 0),
        # its job's or template's class (else the run's)
        "priority_class": pick("priority_class"),
        "resource_class": _bundle(layers),
        "restart": pick("retry") or pick("restart_policy"),
        "success": (pick("success_criteria") or {}).get("exit_codes", [0]),
        "completions": par.get("completions", 1),
        "max_concurrent": par.get("max_concurrent"),
        "strategy": par.get("completion_strategy", "all_successful"),
        "output_max": pick("output_max_bytes") or DEFAULT_OUTPUT_MAX_BYTES,
        "image": pick("image"),
    }
    plan["needs"] = sorted(_outputs_needed(plan))
    return plan


def _bundle(layers: Sequence[Mapping[str, Any]]) -> str | None:
    """A job's resource class, unless the task or the job itself gives
    resources (a template's are less specific than the job's class)."""
    for layer in layers:
        if layer.get("resources"):
            return None
        if layer.get("resource_class"):
            return layer["resource_class"]
    return None


def _picker(layers: Sequence[Mapping[str, Any]]) -> Any:
    def pick(key: str) -> Any:
        for layer in layers:
            if layer.get(key) is not None:
                return layer[key]
        return None

    return pick


def _outputs_needed(plan: Mapping[str, Any]) -> set[str]:
    """Tasks whose output this task's workflow-scope values reference."""
    texts = list(plan["env"].values())
    if plan["bind"] is not None:
        texts += list(plan["bind"].values())
    else:
        texts += [*(plan["command"] or ()), plan["shell"] or ""]
    needed = set()
    for text in texts:
        for expr in references(text):
            try:
                kind, name = classify(expr)
            except RenderError:
                continue
            if kind == "output":
                needed.add(name)
    return needed


def _hook_plan(seq: int, hook: Mapping[str, Any], which: str, deps: list[str]) -> dict:
    return {
        "seq": seq,
        "deps": deps,
        "rule": "all_done",
        "hook": which,
        "command": list(hook["command"]),
        "shell": None,
        "bind": None,
        "decls": [],
        "env_own": {},
        "env": {},
        "cwd": None,
        "cpus": 1,
        "mem_mb": 0,
        "gpus": 0,
        "timeout_s": hook.get("timeout", 60.0),
        "priority": 0,
        "restart": None,
        "success": [0],
        "completions": 1,
        "max_concurrent": None,
        "strategy": "all_successful",
        "output_max": DEFAULT_OUTPUT_MAX_BYTES,
        "image": None,
        "needs": [],
        "warn_only": hook.get("on_failure") == "warn",
    }


def hook_argv(command: Sequence[str]) -> list[str]:
    """A hook command with the run's JSON (``$XQUTE_RUN_JSON``) on its stdin."""
    return [
        "/bin/sh",
        "-c",
        'printf "%s" "$XQUTE_RUN_JSON" | "$@"',
        "xqute-hook",
        *command,
    ]


def render_task(
    plan: Mapping[str, Any],
    params: Mapping[str, str],
    outputs: Mapping[str, str],
    run: Mapping[str, Any],
    item: int,
) -> tuple[str | list[str], dict[str, str]]:
    """(command, env) of one item of a task; ``RenderError`` says why not.

    ``params``: the run's parameters; ``outputs``: task -> output value of the
    tasks in ``plan["needs"]`` that wrote one; ``run``: ``id``, ``name`` and
    ``refs`` (extra fixed references such as ``schedule.time``).
    """

    def fixed(kind: str, name: str, expr: str) -> str:
        if kind == "run":
            return str(run["id"]) if name == "id" else str(run["name"])
        if kind == "item":
            return str(item)
        refs = run.get("refs") or {}
        if expr in refs:
            return str(refs[expr])
        raise RenderError(f"#{{{expr}}} has no value in this run")

    def in_run(expr: str) -> str:
        kind, name = classify(expr)
        if kind == "param":
            if name not in params:
                raise RenderError(f"#{{{expr}}}: the run has no parameter {name!r}")
            return params[name]
        if kind == "output":
            if name not in outputs:
                raise RenderError(
                    f"#{{{expr}}}: task {name!r} wrote no output ($XQUTE_OUTPUT)"
                )
            return outputs[name]
        return fixed(kind, name, expr.strip())

    resolve, exported = in_run, dict(params)
    if plan["bind"] is not None:
        given = {k: render(v, in_run) for k, v in plan["bind"].items()}
        values, problems = bind_params(plan["decls"], given)
        if problems:
            raise RenderError("; ".join(problems))

        def in_template(expr: str) -> str:
            kind, name = classify(expr)
            if kind == "param":
                return values.get(name, "")
            if kind == "output":
                raise RenderError(f"#{{{expr}}}: a template cannot read outputs")
            return fixed(kind, name, expr.strip())

        resolve, exported = in_template, {**params, **values}
    if plan["shell"] is not None:
        command: str | list[str] = render_shell(plan["shell"], resolve)
    else:
        command = [render(arg, resolve) for arg in plan["command"]]
    env = {k: render(v, resolve) for k, v in plan["env_own"].items()}
    env.update({k: render(v, in_run) for k, v in plan["env"].items()})
    for name, value in exported.items():
        env[f"XQUTE_PARAM_{_ENV_SAFE.sub('_', name).upper()}"] = value
    env.update(run.get("env") or {})
    env.update(
        XQUTE_RUN_ID=str(run["id"]),
        XQUTE_RUN_NAME=str(run["name"]),
        XQUTE_ITEM_INDEX=str(item),
    )
    return command, env


def in_container(
    runtime: str, image: str, command: str | list[str], env_names: list[str]
) -> str:
    """Shell code that runs ``command`` in a container of ``image`` (a task with
    ``image=``): the job's folder mounted at the same path (so
    ``$XQUTE_OUTPUT`` works), its environment passed by name, removed at the
    end; a kill of the job reaches the container through the runtime's client."""
    inner = ["sh", "-c", command] if isinstance(command, str) else list(command)
    names = sorted({*env_names, "XQUTE_OUTPUT", "XQUTE_JOB_INDEX", "XQUTE_JOB_METADIR"})
    env = " ".join(f"-e {n}" for n in names)
    return (
        f"exec {shlex.quote(runtime)} run --rm -i"
        ' -v "$XQUTE_JOB_METADIR:$XQUTE_JOB_METADIR" -w "$XQUTE_JOB_METADIR"'
        f" {env} {shlex.quote(image)} {shlex.join(inner)}"
    )


def shell_words(command: str | list[str]) -> str:
    """A command for display."""
    return command if isinstance(command, str) else shlex.join(command)
