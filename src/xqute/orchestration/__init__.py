"""Layer 3: job definitions, templates, workflows (DAGs) with output passing,
run on the queue's pools.

    from xqute.orchestration import Orchestrator, Workflow, Task

    orch = Orchestrator()                     # the queue's db
    orch.create_workflow(Workflow(name="etl", tasks=[
        Task("extract", command=["extract"]),
        Task("load", command=["load", "#{extract.output}"], dependencies=["extract"]),
    ]))

Everything that runs is a queue job; runs, tasks, outputs and events are
tables of the queue's db. Names are imported on first use: the daemon loads
only the parts it runs (no pydantic). See docs/workflows.md.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ..errors import (
    DefinitionError,
    DefinitionNotFoundError,
    RenderError,
    RunNotFoundError,
    WorkflowError,
)

if TYPE_CHECKING:
    from ..queue.classes import NamedQueue, PriorityClass, ResourceClass
    from ..queue.limits import ResourceLimits, ResourceQuota
    from ..queue.scaling import (
        AutoscalingPolicy,
        QueueLength,
        ResourceUtilization,
        ScalingRule,
    )
    from .aorchestrator import AsyncOrchestrator, AsyncWorkflowExecution
    from .catalog import DefinitionInfo
    from .events import Event
    from .execution import WorkflowExecution
    from .models import JobSpec, JobTemplate, Task, Workflow
    from .orchestrator import Orchestrator
    from .schedules import Cron, Every
    from .specs import (
        ExponentialBackoff,
        HookCommand,
        LinearBackoff,
        Parallelism,
        Parameter,
        ResourceRequirements,
        RestartPolicy,
        SuccessCriteria,
        WorkflowHooks,
    )
    from .status import RunStatus, TaskStatus, WorkflowStatus

_LAZY = {
    "Orchestrator": ".orchestrator",
    # the resource policy (docs/resources.md): plain dataclasses of layer 2
    "AutoscalingPolicy": "..queue.scaling",
    "QueueLength": "..queue.scaling",
    "ResourceUtilization": "..queue.scaling",
    "ScalingRule": "..queue.scaling",
    "NamedQueue": "..queue.classes",
    "PriorityClass": "..queue.classes",
    "ResourceClass": "..queue.classes",
    "ResourceLimits": "..queue.limits",
    "ResourceQuota": "..queue.limits",
    "AsyncOrchestrator": ".aorchestrator",
    "AsyncWorkflowExecution": ".aorchestrator",
    "WorkflowExecution": ".execution",
    "RunStatus": ".status",
    "TaskStatus": ".status",
    "WorkflowStatus": ".status",
    "Cron": ".schedules",
    "Every": ".schedules",
    "DefinitionInfo": ".catalog",
    "Event": ".events",
    "JobSpec": ".models",
    "JobTemplate": ".models",
    "Task": ".models",
    "Workflow": ".models",
    "ExponentialBackoff": ".specs",
    "HookCommand": ".specs",
    "LinearBackoff": ".specs",
    "Parallelism": ".specs",
    "Parameter": ".specs",
    "ResourceRequirements": ".specs",
    "RestartPolicy": ".specs",
    "SuccessCriteria": ".specs",
    "WorkflowHooks": ".specs",
}

__all__ = [
    "AsyncOrchestrator",
    "AsyncWorkflowExecution",
    "AutoscalingPolicy",
    "Cron",
    "DefinitionError",
    "DefinitionInfo",
    "DefinitionNotFoundError",
    "Event",
    "Every",
    "ExponentialBackoff",
    "HookCommand",
    "JobSpec",
    "JobTemplate",
    "LinearBackoff",
    "NamedQueue",
    "Orchestrator",
    "Parallelism",
    "Parameter",
    "PriorityClass",
    "QueueLength",
    "RenderError",
    "ResourceClass",
    "ResourceLimits",
    "ResourceQuota",
    "ResourceRequirements",
    "ResourceUtilization",
    "RestartPolicy",
    "RunNotFoundError",
    "RunStatus",
    "ScalingRule",
    "SuccessCriteria",
    "Task",
    "TaskStatus",
    "Workflow",
    "WorkflowError",
    "WorkflowExecution",
    "WorkflowHooks",
    "WorkflowStatus",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'xqute.orchestration' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
