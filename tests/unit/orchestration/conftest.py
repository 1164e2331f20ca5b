"""A pool without processes: the real claim and finish transactions of
``queue/claims.py`` with the orchestration extension, driven by the test (it
decides each job's exit code and output), so run logic is tested in
milliseconds. Integration tests run the same runs through real pools."""

import time
from pathlib import Path

import pytest

from xqute.orchestration import Orchestrator
from xqute.orchestration.pool_hooks import EXTENSION
from xqute.queue import claims
from xqute.queue.policy import Start


class StepPool:
    def __init__(self, orch: Orchestrator, workdir: Path) -> None:
        self.orch, self.db, self.workdir = orch, orch.db, workdir

    def pending(self) -> list[tuple[int, str, int | None]]:
        return [
            tuple(r)
            for r in self.db.query(
                "SELECT id, task, item_index FROM job_queue WHERE state = 'pending'"
                " ORDER BY id"
            )
        ]

    def claim(self, *tasks: str) -> dict[str, int]:
        """Claim the pending jobs (of ``tasks``, or all); task[item] -> job id."""
        chosen = [(i, t, n) for i, t, n in self.pending() if not tasks or t in tasks]
        todo = []
        for job_id, _, _ in chosen:
            (self.workdir / str(job_id)).mkdir(exist_ok=True)
            todo.append((Start(job_id), str(self.workdir / str(job_id))))
        got, _ = claims.sync_cycle(
            self.db, "w", time.time(), claims=todo, extensions=[EXTENSION]
        )
        names = {i: t + (f"[{n}]" if n else "") for i, t, n in chosen}
        return {names[c.id]: c.id for c in got}

    def finish(
        self,
        job_id: int,
        rc: int = 0,
        output: bytes | str | None = None,
        state: str | None = None,
    ) -> bool:
        if output is not None:
            data = output.encode() if isinstance(output, str) else output
            (self.workdir / str(job_id) / "output").write_bytes(data)
        state = state or ("completed" if rc == 0 else "failed")
        done = [claims.Finished(job_id, state, rc, None, time.time())]
        return claims.sync_cycle(
            self.db, "w", time.time(), finished=done, extensions=[EXTENSION]
        )[1]

    def run(self, task: str, rc: int = 0, output: str | None = None) -> int:
        """Claim and finish the one pending job of ``task``."""
        job_id = self.claim(task)[task]
        self.finish(job_id, rc, output)
        return job_id

    def states(self, run_id: int) -> dict[str, str]:
        return {t.name: t.state for t in self.orch.get_workflow_status(run_id).tasks}


@pytest.fixture
def orch(tmp_path):
    o = Orchestrator(tmp_path / "q.db")
    yield o
    o.close()


@pytest.fixture
def pool(orch, tmp_path):
    return StepPool(orch, tmp_path)
