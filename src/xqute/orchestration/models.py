"""The three kinds of definition users write: ``JobTemplate``, ``JobSpec`` (a
"job") and ``Workflow`` of ``Task``s.

Each checks what it can alone (one of command/shell/template, names, ranges);
what needs the other definitions (does the template exist, are the
dependencies acyclic, do the ``#{...}`` references resolve) is checked by
``validate.py`` when the definition is created, with every problem in one error.

``#{...}`` references in commands, env values and task parameters:
``#{params.NAME}`` (the template's parameters in a template, the workflow's in a
workflow), ``#{TASK.output}`` (what an upstream task wrote to ``$XQUTE_OUTPUT``),
``#{run.id}``, ``#{run.name}``, ``#{item.index}`` (a parallel item);
``##{`` writes a literal ``#{``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    PlainSerializer,
    model_validator,
)

from .schedules import coerce_schedule, dump_schedule
from .specs import (
    NAME_RE,
    Duration,
    Image,
    Parallelism,
    Parameter,
    ResourceRequirements,
    RestartPolicy,
    Size,
    Spec,
    SuccessCriteria,
    Text,
    WorkflowHooks,
)

__all__ = ["TRIGGER_RULES", "JobSpec", "JobTemplate", "Task", "Workflow"]

#: ``schedule=``: a ``Cron``/``Every`` (plain dataclasses, see schedules.py),
#: given as one or as its mapping; stored as the mapping
ScheduleField = Annotated[
    Any, BeforeValidator(coerce_schedule), PlainSerializer(dump_schedule)
]

#: when a task may start, from its dependencies' ends
TRIGGER_RULES = ("all_success", "all_done", "one_success", "none_failed", "all_failed")
#: words a task may not be called: they start other references
RESERVED_TASK_NAMES = ("params", "run", "item", "workflow")


class _Runnable(Spec):
    """What every runnable definition shares."""

    command: list[Text] | None = None
    shell: str | None = None
    image: Image | None = None
    env: dict[str, Text] = {}
    working_dir: str | None = None
    timeout: Duration | None = None
    output_max_bytes: Size | None = None

    def _one_of(self, *fields: str) -> None:
        given = [f for f in fields if getattr(self, f) is not None]
        if len(given) != 1:
            names = ", ".join(f"{f}=" for f in fields)
            detail = "none" if not given else " and ".join(f"{f}=" for f in given)
            raise ValueError(f"give exactly one of {names} (got {detail})")
        if self.command is not None and not self.command:
            raise ValueError("command is an empty list; its first item is the program")
        if self.shell is not None and not self.shell.strip():
            raise ValueError("shell is empty")


class JobTemplate(_Runnable):
    """A job with declared parameters, referenced as ``#{params.NAME}`` and also
    exported to the job as ``XQUTE_PARAM_<NAME>``."""

    name: str = Field(pattern=NAME_RE)
    namespace: str = Field("default", pattern=NAME_RE)
    description: str = ""
    resources: ResourceRequirements = ResourceRequirements()
    #: the priority class of the jobs made from it, unless they name one
    priority_class: str | None = None
    parameters: list[Parameter] = []
    restart_policy: RestartPolicy | None = Field(
        None, validation_alias=AliasChoices("restart_policy", "restart", "retry")
    )
    success_criteria: SuccessCriteria | None = Field(
        None, validation_alias=AliasChoices("success_criteria", "success")
    )

    @model_validator(mode="after")
    def _check(self) -> JobTemplate:
        self._one_of("command", "shell")
        return self


class JobSpec(_Runnable):
    """A named job: a command (argv), shell code, or a template with parameters.
    Without a schedule, creating it runs it once now."""

    name: str = Field(pattern=NAME_RE)
    namespace: str = Field("default", pattern=NAME_RE)
    description: str = ""
    template: str | None = None
    parameters: dict[str, Text] = {}
    resources: ResourceRequirements | None = None
    restart_policy: RestartPolicy | None = Field(
        None, validation_alias=AliasChoices("restart_policy", "restart", "retry")
    )
    success_criteria: SuccessCriteria | None = Field(
        None, validation_alias=AliasChoices("success_criteria", "success")
    )
    parallelism: Parallelism | None = None
    priority: int = 0
    #: the resource policy (docs/resources.md): a priority class, a named queue
    #: (its priority and class) and a resource class (the request when no
    #: ``resources`` is given); each must exist when the job is created
    priority_class: str | None = None
    queue: str | None = None
    resource_class: str | None = None
    #: ``Cron(...)``/``Every(...)`` or ``{cron: ...}``/``{every: ...}``
    schedule: ScheduleField = None

    @model_validator(mode="after")
    def _check(self) -> JobSpec:
        self._one_of("command", "shell", "template")
        if self.parameters and self.template is None:
            raise ValueError("parameters= needs template=")
        return self


class Task(_Runnable):
    """One node of a workflow: ``job=`` (a template or a defined job, with
    ``parameters=``), or an inline ``command=``/``shell=``."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,127}$")
    job: str | None = Field(None, validation_alias=AliasChoices("job", "template"))
    parameters: dict[str, Text] = {}
    dependencies: list[str] = Field(
        [], validation_alias=AliasChoices("dependencies", "depends_on", "deps")
    )
    trigger_rule: Literal[TRIGGER_RULES] = "all_success"  # type: ignore[valid-type]
    resources: ResourceRequirements | None = None
    retry: RestartPolicy | None = Field(
        None, validation_alias=AliasChoices("retry", "restart_policy", "restart")
    )
    success_criteria: SuccessCriteria | None = Field(
        None, validation_alias=AliasChoices("success_criteria", "success")
    )
    parallelism: Parallelism | None = None
    priority: int | None = None

    def __init__(self, name: str | None = None, /, **data: Any) -> None:
        if name is not None:
            data["name"] = name
        super().__init__(**data)

    @model_validator(mode="after")
    def _check(self) -> Task:
        self._one_of("job", "command", "shell")
        if self.name in RESERVED_TASK_NAMES:
            raise ValueError(
                f"a task may not be called {self.name!r}"
                f" ({', '.join(RESERVED_TASK_NAMES)} start other references)"
            )
        if self.parameters and self.job is None:
            raise ValueError("parameters= needs job= (a template or a defined job)")
        return self


class Workflow(Spec):
    """A DAG of tasks. ``on_failure``: "stop" starts nothing new after a task
    failed (running ones finish), "continue" runs every task whose dependencies
    allow it. ``parallelism`` caps a run's tasks queued or running at once;
    ``timeout`` cancels what still runs (TERM, grace, KILL)."""

    name: str = Field(pattern=NAME_RE)
    namespace: str = Field("default", pattern=NAME_RE)
    description: str = ""
    tasks: list[Task] = Field(min_length=1)
    parameters: list[Parameter] = []
    on_failure: Literal["stop", "continue"] = Field(
        "stop", validation_alias=AliasChoices("on_failure", "failure_policy")
    )
    timeout: Duration | None = None
    parallelism: int | None = Field(None, ge=1)
    env: dict[str, Text] = {}
    hooks: WorkflowHooks | None = None
    priority: int = 0
    #: the priority class and named queue of its tasks' jobs (must exist)
    priority_class: str | None = None
    queue: str | None = None
    schedule: ScheduleField = None
