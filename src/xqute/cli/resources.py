"""``xqute resources show``, ``xqute quota list|delete``, ``xqute priorityclass
list|delete``, ``xqute autoscale show``: the resource policy of a db.

xqute resources show [-n team-a] [--json]  # capacity, quotas, demand, preemptions
xqute quota list                          # every namespace's quota
xqute quota delete team-quota
xqute priorityclass list | delete batch
xqute autoscale show                      # each policy's desired/current replicas

Quotas, classes and policies are created with ``xqute apply`` (the YAML blocks
``resources.quotas``, ``resources.priority_classes``, ``resources.auto_scaling``)
or the Python API (docs/resources.md). Exit codes: 0 done, 1 the db could not
be used, 2 bad input (an unknown name).
"""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.text import Text

from ..errors import XquteError
from ._format import existing_store, mem, when
from .common import DB_OPTION, JSON_OPTION, fail, print_json, stdout, table_console

app = typer.Typer(
    name="resources",
    help="Capacity, quotas, pending demand, preemptions, autoscalers.",
    no_args_is_help=True,
    add_completion=False,
)
quota_app = typer.Typer(name="quota", help="Namespace quotas.", no_args_is_help=True)
priorityclass_app = typer.Typer(
    name="priorityclass", help="Priority classes.", no_args_is_help=True
)
autoscale_app = typer.Typer(
    name="autoscale", help="Autoscaling policies.", no_args_is_help=True
)
NAME_ARG = typer.Argument(..., help="Its name.")


def _db(db: str | None) -> Any:
    return existing_store(db).db


def _usage(db: str | None, namespace: str | None = None) -> dict[str, Any]:
    from ..orchestration.resource_report import resource_usage

    try:
        return resource_usage(_db(db), namespace)
    except XquteError as exc:
        fail(exc)


def _table(*columns: str) -> Any:
    from rich.table import Table

    table = Table(show_edge=False, box=None, pad_edge=False)
    for col in columns:
        table.add_column(col, overflow="fold")
    return table


def _row(table: Any, *cells: Any) -> None:
    """User strings are data: never read as rich markup."""
    table.add_row(*(c if isinstance(c, Text) else Text(str(c)) for c in cells))


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _of(used: float, limit: float | None, memory: bool = False) -> str:
    """``6/32``; ``6`` without a limit."""
    show = mem if memory else _num
    text = show(used) if used else "0"  # type: ignore[operator]
    return text if limit is None else f"{text}/{show(limit)}"  # type: ignore[operator]


def _seconds(value: float) -> str:
    return "-" if not value else f"{value:g}s"


@app.command()
def show(
    namespace: str = typer.Option(
        None, "--namespace", "-n", help="Only this namespace."
    ),
    db: str = DB_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Capacity, allocated and quota per namespace, pending demand, priority
    classes, recent preemptions (who evicted whom), autoscalers."""
    report = _usage(db, namespace)
    if json_out:
        print_json(report)
        return
    cap = report["capacity"]
    if not report["pools"]:
        stdout.print("capacity: no pool is running (xqute service start)")
    else:
        stdout.print(
            f"capacity: {len(report['pools'])} pool(s), {cap['slots']} slots,"
            f" {_num(cap['cpu']) if cap['cpu'] is not None else 'unlimited'} cpus,"
            f" {mem(cap['memory']) if cap['memory'] is not None else 'unlimited'}"
            f" memory, {cap['gpu']} GPUs"
        )
    out = table_console()
    table = _table("NAMESPACE", "CPU", "MEMORY", "GPU", "STORAGE", "JOBS",
                   "PENDING", "QUOTA")  # fmt: skip
    for ns, info in report["namespaces"].items():
        used, waiting, quota = info["allocated"], info["pending"], info["quota"]
        limits = quota["limits"] if quota else {}
        name = "-" if not quota else quota["name"]
        if quota and quota["cohort"]:
            name += f" (cohort {quota['cohort']})"
        demand = f"{waiting['jobs']} ({_num(waiting['cpu'])} cpus)"
        _row(table, ns,
             _of(used["cpu"], limits.get("cpu")),
             _of(used["memory"], limits.get("memory"), memory=True),
             _of(used["gpu"], limits.get("gpu")),
             _of(used["storage"], limits.get("storage"), memory=True),
             _of(used["jobs"], limits.get("jobs")),
             demand if waiting["jobs"] else "-",
             name)  # fmt: skip
    stdout.print()
    if report["namespaces"]:
        out.print(table)
    else:
        stdout.print("no jobs, no quotas")
    if report["priority_classes"]:
        stdout.print()
        _print_classes(report["priority_classes"])
    if report["preemptions"]:
        stdout.print()
        stdout.print("recent preemptions:")
        table = _table("WHEN", "VICTIM", "FOR", "OUTCOME", "REASON")
        for p in report["preemptions"]:
            _row(table, when(p["ts"]),
                 f"job {p['job_id']} ({p['namespace']}, {p['priority']})",
                 f"job {p['by_job']} ({p['by_namespace']}, {p['by_priority']})",
                 p["outcome"] or "terminating", p["reason"])  # fmt: skip
        out.print(table)
    if report["autoscalers"]:
        stdout.print()
        _print_scalers(report["autoscalers"])


def _print_classes(classes: dict[str, dict[str, Any]]) -> None:
    table = _table("PRIORITY CLASS", "VALUE", "PREEMPTS", "PREEMPTIBLE",
                   "MIN RUNTIME", "GRACE", "MAX PREEMPTIONS", "ON PREEMPT",
                   "DEFAULT")  # fmt: skip
    for name, pc in classes.items():
        preemptible = pc["preemptible"]
        _row(table, name, pc["value"],
             "yes" if pc["preemption_policy"] != "never" else "no",
             "yes" if preemptible else "no",
             _seconds(pc["min_runtime"]) if preemptible else "-",
             _seconds(pc["grace_period"]) if preemptible else "-",
             _num(pc["max_preemptions"]) if preemptible else "-",
             pc["on_preempt"] if preemptible else "-",
             "yes" if pc["global_default"] else "")  # fmt: skip
    table_console().print(table)


def _print_scalers(rows: list[dict[str, Any]]) -> None:
    table = _table("POLICY", "POOL", "REPLICAS", "CURRENT", "DESIRED", "RANGE",
                   "LAST CHANGE", "REASON")  # fmt: skip
    now = time.time()
    for r in rows:
        _row(table, r["policy"], r["worker"], r["kind"], r["current"], r["desired"],
             f"{r['min_replicas']}-{r['max_replicas']}",
             when(r["last_change_at"], now), r["reason"] or "")  # fmt: skip
    table_console().print(table)


# ---------------------------------------------------------------------- quota
@quota_app.command("list")
def quota_list(db: str = DB_OPTION, json_out: bool = JSON_OPTION) -> None:
    """Every namespace's quota: limits, cohort, what it holds now."""
    report = _usage(db)
    quotas = {
        ns: {**info["quota"], "namespace": ns, "allocated": info["allocated"]}
        for ns, info in report["namespaces"].items()
        if info["quota"] is not None
    }
    if json_out:
        print_json(list(quotas.values()))
        return
    if not quotas:
        stdout.print("no quotas (xqute apply a resources.quotas block)")
        return
    from ..queue.limits import ResourceLimits

    table = _table("QUOTA", "NAMESPACE", "LIMITS", "COHORT", "BORROWING LIMIT",
                   "HOLDS")  # fmt: skip
    for q in quotas.values():
        used = q["allocated"]
        borrow = q["borrowing_limit"]
        holds = f"{_num(used['cpu'])} cpus, {mem(used['memory'])}, {used['jobs']} jobs"
        _row(table, q["name"], q["namespace"],
             ResourceLimits(**q["limits"]).describe(), q["cohort"] or "-",
             ResourceLimits(**borrow).describe() if borrow is not None else "-",
             holds)  # fmt: skip
    table_console().print(table)


@quota_app.command("delete")
def quota_delete(name: str = NAME_ARG, db: str = DB_OPTION) -> None:
    """Delete a quota (its namespace is unlimited from the next dispatch on)."""
    _delete("quota", name, db)


# ---------------------------------------------------------------------- classes
@priorityclass_app.command("list")
def priorityclass_list(db: str = DB_OPTION, json_out: bool = JSON_OPTION) -> None:
    """Every priority class: value, preemption rules, the default one."""
    classes = _usage(db)["priority_classes"]
    if json_out:
        print_json([{"name": n, **pc} for n, pc in classes.items()])
        return
    if not classes:
        stdout.print("no priority classes")
        return
    _print_classes(classes)


@priorityclass_app.command("delete")
def priorityclass_delete(name: str = NAME_ARG, db: str = DB_OPTION) -> None:
    """Delete a priority class (its jobs keep their priority, lose its rules)."""
    _delete("priority_class", name, db)


# ---------------------------------------------------------------------- autoscale
@autoscale_app.command("show")
def autoscale_show(db: str = DB_OPTION, json_out: bool = JSON_OPTION) -> None:
    """Each autoscaling policy, and what the pools applying it decided last."""
    report = _usage(db)
    if json_out:
        print_json({"policies": report["autoscaling"],
                    "autoscalers": report["autoscalers"]})  # fmt: skip
        return
    if not report["autoscaling"]:
        stdout.print("no autoscaling policies")
        return
    table = _table("POLICY", "TARGET", "METRICS", "RANGE", "UP", "DOWN")
    for name, p in report["autoscaling"].items():
        metrics = ", ".join(_metric(m) for m in p["metrics"])
        _row(table, name, p["target"], metrics,
             f"{p['min_replicas']}-{p['max_replicas']}",
             _rule(p["scale_up"]), _rule(p["scale_down"]))  # fmt: skip
    table_console().print(table)
    if report["autoscalers"]:
        stdout.print()
        _print_scalers(report["autoscalers"])
    else:
        stdout.print("no pool applies them yet (xqute service start)")


def _metric(spec: dict[str, Any]) -> str:
    ((kind, args),) = spec.items()
    if kind == "queue_length":
        return f"queue {args['target']:g}/replica (+-{args['tolerance']:g})"
    return f"{args['resource']} {args['target_percentage']:g}%"


def _rule(rule: dict[str, Any]) -> str:
    threshold = rule["threshold"]
    gate = f" at {threshold:g}%" if threshold is not None else ""
    return f"{rule['step']} per {rule['duration']:g}s{gate}"


def _delete(kind: str, name: str, db: str | None) -> None:
    from ..orchestration.resource_api import delete_policy

    try:
        delete_policy(_db(db), kind, name)
    except XquteError as exc:
        fail(exc)
    stdout.print(Text(f"deleted {kind.replace('_', ' ')} {name}"))
