"""Helpers of the queue daemon tests (imported by conftest.py and the tests)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from xqute.queue import SqliteJobScheduler
from xqute.queue.schema import FINAL_STATES


def wait_for(cond: Callable[[], object], timeout_s: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.05)


def wait_final(
    store: SqliteJobScheduler, ids: Iterable[int], timeout_s: float = 30
) -> dict[int, dict]:
    ids = list(ids)

    def done() -> bool:
        states = store.get_job_states(ids)
        return all(states[i]["state"] in FINAL_STATES for i in ids)

    wait_for(done, timeout_s, f"jobs {ids[:5]}... to end")
    return {i: store.get_job_status(i) for i in ids}


def wait_running(store: SqliteJobScheduler, ids: Iterable[int], timeout_s=20) -> None:
    ids = list(ids)
    wait_for(
        lambda: all(
            (st := store.get_job_status(i))["state"] == "running"
            and (st["pid"] or st["native_id"])
            for i in ids
        ),
        timeout_s,
        f"jobs {ids} to run",
    )


def read(path: str) -> str:
    return Path(path).read_text()
