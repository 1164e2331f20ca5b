"""The orchestration layer's public names: the issue's API block is a contract."""

import subprocess
import sys

import xqute.orchestration


def test_contract_names():
    from xqute.orchestration import (  # noqa: F401
        AsyncOrchestrator,
        ExponentialBackoff,
        JobSpec,
        JobTemplate,
        LinearBackoff,
        Orchestrator,
        Parallelism,
        Parameter,
        ResourceRequirements,
        RestartPolicy,
        SuccessCriteria,
        Task,
        Workflow,
    )

    for method in (
        "create_job_template",
        "create_job",
        "create_workflow",
        "execute_workflow",
        "get_workflow_status",
        "cancel_workflow",
        "retry_workflow",
        "watch",
        "get_job_status",
        "suspend_job",
        "resume_job",
        "delete_job",
    ):
        assert callable(getattr(Orchestrator, method)), method
        assert callable(getattr(AsyncOrchestrator, method)), method


def test_all_names_are_importable():
    for name in xqute.orchestration.__all__:
        assert getattr(xqute.orchestration, name) is not None, name


def test_the_daemons_part_imports_neither_pydantic_nor_yaml():
    code = (
        "import sys\n"
        "from xqute.queue.extensions import load_extensions\n"
        "load_extensions(['orchestration'])\n"
        "print(sorted({'pydantic', 'yaml', 'typer'} & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
