"""schemathesis against the API's own OpenAPI document, through a real uvicorn:
every documented input (and, for the actions, with and without the token)
gets a documented status and body, never a 5xx.

The server has no pool: jobs that schemathesis submits are queued, never run.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from web_helpers import Client

from xqute.queue import SqliteJobScheduler
from xqute.web.openapi import document
from xqute.web.server import token_path

pytestmark = [pytest.mark.web]

# pyproject.toml keeps the schemathesis plugin out of every other run (importing
# it costs ~2 s of CPU at each start of the unit suite): this module loads it.
# Hypothesis' own plugin stays out (loaded this late, it would leave hypothesis
# "initializing" and fail the collection): hypothesis runs without its pytest
# reporting extras (--hypothesis-* options, statistics); a failure still shows
# the falsifying case.
pytest_plugins = ("schemathesis.pytest.plugin",)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """One server (no pool) for every operation, in a process of its own (see
    serve_bare.py), with a few jobs to list, read and cancel."""
    db_path = tmp_path_factory.mktemp("schemathesis") / "queue.db"
    store = SqliteJobScheduler(db_path)
    for i in range(3):
        store.submit_job(["true"], job_name=f"seed-{i}")
    from xqute.orchestration import Cron, JobSpec, Orchestrator, Task, Workflow

    orch = Orchestrator(db_path)
    orch.create_workflow(Workflow(name="pipe", tasks=[Task("a", command=["true"])]))
    orch.create_job(
        JobSpec(name="nightly", command=["true"], schedule=Cron("0 3 * * *"))
    )
    orch.execute_workflow("pipe")  # a run (it never runs: no pool)
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("serve_bare.py")), str(db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    url = proc.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), url
    client = Client(url, token_path(store).read_text().strip())
    yield client
    client.close()
    proc.stdin.close()
    proc.wait(30)
    proc.stdout.close()
    store.close()


@pytest.fixture(autouse=True)
def no_collection_inside_ast_parse():
    """Python 3.11.7's ast.parse breaks when something parses inside it
    (CPython gh-106905: "SystemError: AST constructor recursion depth
    mismatch"). Hypothesis parses its strategies' lambdas; a collection there
    that finalizes a leaked object (any earlier test's) calls pytest's
    unraisable hook, which formats a traceback, which parses: the case fails
    for no fault of the API. The garbage is collected before, and not during."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


# the document the server serves (a test below checks they are the same)
schema = schemathesis.openapi.from_dict(document())


def test_the_served_document_is_this_one(seeded):
    assert seeded.get("/api/openapi.json").json() == document()


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_api_keeps_its_contract(case, seeded):
    case.call_and_validate(
        base_url=seeded.url, headers={"Authorization": f"Bearer {seeded.token}"}
    )
