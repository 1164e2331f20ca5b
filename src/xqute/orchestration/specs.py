"""The building blocks of definitions: resources, restart policies and their
backoffs, parallelism, success criteria, parameters, hooks (pydantic models).

Every model is frozen and rejects unknown keys (``extra="forbid"``): a typo in
a YAML key or a keyword argument is an error naming it, never silently ignored.
Durations accept seconds, a ``timedelta`` or ``"90s"``/``"5m"``/``"2h"``/``"1d"``
and are stored as seconds; memory accepts MB or ``"512M"``/``"4G"``/``"4Gi"``
and is stored as MB; output sizes accept bytes or ``"64Ki"``. Values that users
pass to commands (parameters, env) are text: YAML numbers become their text,
YAML booleans (``yes``/``no``!) are refused rather than turned into "True".
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from ..errors import DefinitionError
from ..units import parse_mem_mb, parse_size_bytes, parse_timeout_s
from .parse import model_problems

__all__ = [
    "Duration",
    "ExponentialBackoff",
    "HookCommand",
    "Image",
    "LinearBackoff",
    "Memory",
    "Parallelism",
    "Parameter",
    "ResourceRequirements",
    "RestartPolicy",
    "Size",
    "SuccessCriteria",
    "Text",
    "WorkflowHooks",
]

#: names of definitions (jobs, templates, workflows)
NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
#: names of tasks and parameters: what ``#{task.output}``/``#{params.x}`` can say
IDENT_RE = r"^[A-Za-z_][A-Za-z0-9_-]{0,127}$"
PARAM_RE = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _duration(value: Any) -> Any:
    return parse_timeout_s(value, "duration")  # None, timedelta, 90, "90s"


def _memory(value: Any) -> Any:
    return 0 if value in (None, "") else parse_mem_mb(value, "memory")


def _size(value: Any) -> Any:
    return None if value is None else parse_size_bytes(value, "size")


def _text(value: Any) -> Any:
    """A value for a command or the environment: text; numbers become text."""
    if isinstance(value, bool):
        raise ValueError(
            f"{value!r} is a boolean (YAML reads yes/no/on/off as booleans);"
            " quote it to pass it as text"
        )
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and "\x00" in value:
        raise ValueError(
            f"{value!r} contains a NUL byte, which no argument or "
            "environment value can hold"
        )
    return value


Duration = Annotated[float, BeforeValidator(_duration)]
Memory = Annotated[int, BeforeValidator(_memory)]
Size = Annotated[int, BeforeValidator(_size)]
Text = Annotated[str, BeforeValidator(_text)]


def _image(value: Any) -> Any:
    """An image name is one word given to the container runtime: a leading
    '-' would be read as one of its options, a space would split it."""
    if isinstance(value, str) and (
        not value
        or value.startswith("-")
        or any(not c.isprintable() or c.isspace() for c in value)
    ):
        raise ValueError(
            f"image {value!r} must be an image name (no leading '-', no spaces)"
        )
    return value


Image = Annotated[str, BeforeValidator(_image)]
#: what a job can exit with (a shell's status: 128+N for signal N)
ExitCode = Annotated[int, Field(ge=0, le=255)]


class Spec(BaseModel):
    """Base of every definition model: frozen, unknown keys rejected."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, validate_default=False
    )

    def __init__(self, /, **data: Any) -> None:
        """A model built in Python code fails like one read from YAML: with a
        ``DefinitionError`` (an ``XquteError`` and a ``ValueError``) listing
        every problem at its field, not pydantic's own exception class."""
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise DefinitionError(type(self).__name__, model_problems(exc)) from None


class ResourceRequirements(Spec):
    """What one queue job of a task asks for (the queue's cpus, mem, gpus)."""

    cpu: int = Field(1, ge=1, validation_alias=AliasChoices("cpu", "cpus"))
    memory: Memory = Field(0, validation_alias=AliasChoices("memory", "mem"))
    gpu: int = Field(0, ge=0, validation_alias=AliasChoices("gpu", "gpus"))


class ExponentialBackoff(Spec):
    """Delay before retry n (1, 2, ...): ``initial * multiplier**(n-1)``, at most
    ``max``, then spread by +-``jitter`` (a fraction) so that retries of many
    tasks that failed together do not come back together."""

    type: Literal["exponential"] = "exponential"
    initial: Duration = 10.0
    max: Duration = 300.0
    multiplier: float = Field(2.0, ge=1.0)
    jitter: float = Field(0.1, ge=0.0, le=1.0)


class LinearBackoff(Spec):
    """Delay before retry n (1, 2, ...): ``interval * n``, at most ``max``,
    spread by +-``jitter``."""

    type: Literal["linear"] = "linear"
    interval: Duration = 60.0
    max: Duration | None = None
    jitter: float = Field(0.0, ge=0.0, le=1.0)


Backoff = Annotated[ExponentialBackoff | LinearBackoff, Field(discriminator="type")]


class RestartPolicy(Spec):
    """When a failed queue job of a task (one item) runs again.

    ``on_failure``: up to ``max_retries`` more times, after ``backoff`` (none:
    at once); ``retry_exit_codes`` limits retries to these codes,
    ``no_retry_exit_codes`` excludes some (HTCondor DAGMan's UNLESS-EXIT). A
    retry waits in the queue's ``waiting`` state: it holds no worker.
    The seed's ``{max_attempts: 3, backoff: exponential}`` is accepted too.
    """

    policy: Literal["never", "on_failure"] = "never"
    max_retries: int = Field(0, ge=0)
    backoff: Backoff | None = None
    retry_exit_codes: list[ExitCode] | None = None
    no_retry_exit_codes: list[ExitCode] = []

    @classmethod
    def on_failure(
        cls,
        max_retries: int = 3,
        backoff: ExponentialBackoff | LinearBackoff | None = None,
        **kwargs: Any,
    ) -> RestartPolicy:
        return cls(
            policy="on_failure", max_retries=max_retries, backoff=backoff, **kwargs
        )

    @classmethod
    def never(cls) -> RestartPolicy:
        return cls()

    @model_validator(mode="before")
    @classmethod
    def _seed_form(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "max_attempts" in data:
            attempts = data.pop("max_attempts")
            if isinstance(attempts, int) and not isinstance(attempts, bool):
                if "max_retries" in data:
                    raise ValueError("give max_attempts or max_retries, not both")
                data["max_retries"] = attempts - 1
                data.setdefault("policy", "on_failure" if attempts > 1 else "never")
            else:
                raise ValueError(f"max_attempts {attempts!r} must be an integer")
        if isinstance(data.get("backoff"), str):
            data["backoff"] = {"type": data["backoff"]}
        if data.get("max_retries") and "policy" not in data:
            data["policy"] = "on_failure"
        return data

    @property
    def max_attempts(self) -> int:
        return 1 + (self.max_retries if self.policy == "on_failure" else 0)


class Parallelism(Spec):
    """Run a task as ``completions`` items (``$XQUTE_ITEM_INDEX`` 0..n-1, each a
    queue job), at most ``max_concurrent`` at once. ``all_successful``: the task
    succeeds when every item did and fails at the first item that failed for
    good; ``any_successful``: it succeeds at the first item that succeeded."""

    completions: int = Field(1, ge=1, le=100_000)
    max_concurrent: int | None = Field(None, ge=1)
    completion_strategy: Literal["all_successful", "any_successful"] = Field(
        "all_successful",
        validation_alias=AliasChoices("completion_strategy", "completion"),
    )


class SuccessCriteria(Spec):
    """Exit codes that count as success (default: 0)."""

    exit_codes: list[ExitCode] = Field([0], min_length=1)


class Parameter(Spec):
    """A declared parameter of a template or workflow: ``Parameter("input",
    required=True)``, ``Parameter("size", default="1000")``. ``choices`` and
    ``pattern`` (a full match) are checked before the job is queued."""

    name: str = Field(pattern=PARAM_RE)
    required: bool = False
    default: Text | None = None
    description: str = ""
    choices: list[Text] | None = None
    pattern: str | None = None

    def __init__(self, name: str | None = None, /, **data: Any) -> None:
        if name is not None:
            data["name"] = name
        super().__init__(**data)

    @model_validator(mode="after")
    def _consistent(self) -> Parameter:
        if self.required and self.default is not None:
            raise ValueError(f"parameter {self.name!r} is required and has a default")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern {self.pattern!r} is invalid: {exc}") from exc
        return self

    def check(self, value: str) -> str | None:
        """Why ``value`` is not allowed here, or None."""
        if self.choices is not None and value not in self.choices:
            return f"{value!r} is not one of {', '.join(map(repr, self.choices))}"
        if self.pattern is not None and re.fullmatch(self.pattern, value) is None:
            return f"{value!r} does not match {self.pattern}"
        return None


class HookCommand(Spec):
    """A command run around a workflow run, with the run as JSON on its stdin."""

    command: list[Text] = Field(min_length=1)
    timeout: Duration = 60.0
    on_failure: Literal["fail", "warn"] = "fail"


#: hooks named in the seed's ``workflows.hooks`` that xqute always performs:
#: resources and dependencies are checked when a workflow is created and run
BUILTIN_HOOKS = ("validate_resources", "check_dependencies")


def _hook(value: Any) -> Any:
    if isinstance(value, str):
        if value not in BUILTIN_HOOKS:
            raise ValueError(
                f"hook {value!r} is not a built-in one ({', '.join(BUILTIN_HOOKS)});"
                " give a command: {command: [...]}"
            )
        return None
    if isinstance(value, list):
        return {"command": value}
    return value


Hook = Annotated[HookCommand | None, BeforeValidator(_hook)]


class WorkflowHooks(Spec):
    """``pre_execute`` commands run before any task (one that fails with
    ``on_failure: fail`` fails the run); ``post_execute`` ones after the last
    task, whatever the outcome (which their JSON says)."""

    pre_execute: list[Hook] = []
    post_execute: list[Hook] = []

    def commands(self, which: str) -> list[HookCommand]:
        return [h for h in getattr(self, which) if h is not None]
