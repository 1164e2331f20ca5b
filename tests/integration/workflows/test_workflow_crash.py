"""kill -9 of the daemon at random moments of a 2,000-task workflow, three
times: the run completes and every task ran to completion exactly once (each
task appends its name to a ledger with O_APPEND as its last act)."""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter

import pytest

from xqute.orchestration import Task, Workflow

pytestmark = pytest.mark.service

TASKS = 2000
LAYERS = 20


def layered(ledger, seed=7):
    rng = random.Random(seed)
    width = TASKS // LAYERS
    tasks = []
    for layer in range(LAYERS):
        for i in range(width):
            deps = []
            if layer:
                deps = [
                    f"t{layer - 1}_{j}"
                    for j in rng.sample(range(width), rng.randint(1, 3))
                ]
            tasks.append(
                Task(
                    f"t{layer}_{i}",
                    dependencies=deps,
                    shell=f"sleep 0.0$((RANDOM % 5)); echo $XQUTE_TASK >> {ledger}",
                )
            )
    return Workflow(name="big", tasks=tasks)


def test_kill_9_three_times_and_every_task_runs_once(orch, daemon, tmp_path):
    ledger = tmp_path / "ledger"
    orch.create_workflow(layered(ledger))
    service = daemon(4)
    ex = orch.execute_workflow("big")
    rng = random.Random()
    for _ in range(3):
        time.sleep(rng.uniform(1.0, 4.0))
        pid = service.status()["pid"]
        os.kill(pid, signal.SIGKILL)
        time.sleep(rng.uniform(0.0, 0.5))
        service = daemon(4)
    st = ex.wait(timeout=600, embedded=False)
    lines = ledger.read_text().split()
    counts = Counter(lines)
    assert st.state == "succeeded", (st.reason, st.counts)
    assert len(counts) == TASKS, f"{TASKS - len(counts)} tasks never ran"
    twice = {k: n for k, n in counts.items() if n > 1}
    assert not twice, f"ran more than once: {twice}"
    assert all(t.attempts == 1 for t in st.tasks)
