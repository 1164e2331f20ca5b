"""The detached job runner: state machine and task scheduling."""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import subprocess
import sys
import threading
import time

from .attempt import AttemptMixin
from .common import EXIT_GENERIC, FINAL_STATES, fmt_duration, killpg_quiet
from .store import JobGone, gc_if_expired, job_lock, set_state
from .validate import task_count


# --------------------------------------------------------------------------- #
# Runner: executes one job, detached from the CLI call
# --------------------------------------------------------------------------- #
class Runner(AttemptMixin):
    def __init__(self, jdir: str, uid: str):
        self.jdir = jdir
        self.uid = uid
        self.wake = threading.Event()
        self.deleted = threading.Event()
        self.shutdown = threading.Event()
        self.lock = threading.Lock()
        self.procs: dict[str, subprocess.Popen] = {}
        self.gone = False
        self.signalled = False

    # -- state helpers ------------------------------------------------------
    @contextlib.contextmanager
    def locked(self):
        with self.lock, job_lock(self.jdir, self.uid) as box:
            state = box["job"]["status"]["state"]
            if state == "DELETION_IN_PROGRESS":
                self.deleted.set()
            yield box

    def update(self, fn) -> bool:
        """Run fn(job, sim) under the lock; False if the job is gone."""
        try:
            with self.locked() as box:
                if fn(box["job"], box["sim"]) is not False:
                    box["dirty"] = True
            return True
        except JobGone:
            self.gone = True
            self.deleted.set()
            return False

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; False if deleted/shut down meanwhile."""
        end = time.monotonic() + seconds
        while True:
            self.refresh_if_signalled()
            if self.deleted.is_set() or self.shutdown.is_set():
                return False
            left = end - time.monotonic()
            if left <= 0:
                return True
            self.wake.wait(left)
            self.wake.clear()

    def on_signal(self, signum, _frame):
        # Only set flags here: the main thread may hold self.lock right now.
        if signum == signal.SIGTERM:
            self.shutdown.set()
        else:
            self.signalled = True
        self.wake.set()

    def refresh_if_signalled(self) -> None:
        """After SIGUSR1 (sent by `delete`), re-read the job state from disk."""
        if self.signalled:
            self.signalled = False
            self.update(lambda job, sim: False)

    # -- main ---------------------------------------------------------------
    def run(self) -> None:
        signal.signal(signal.SIGUSR1, self.on_signal)
        signal.signal(signal.SIGTERM, self.on_signal)
        if not self.update(lambda job, sim: sim.__setitem__("runnerPid", os.getpid())):
            return
        snapshot = self.sim_snapshot()
        if snapshot is None:
            return
        self.sett = snapshot["settings"]
        try:
            started = (
                self.wait(self.sett["queue_delay"])
                and self.transition("QUEUED", "SCHEDULED")
                and self.wait(self.sett["schedule_delay"])
                and self.transition("SCHEDULED", "RUNNING")
            )
            if started:
                self.run_tasks()
        finally:
            self.kill_all()
        if self.shutdown.is_set() and not self.deleted.is_set():

            def mark(job, sim):
                if job["status"]["state"] in FINAL_STATES:
                    return False
                set_state(
                    job,
                    "FAILED",
                    " [gcloud batch simulator] runner terminated; task processes were "
                    "killed.",
                )

            self.update(mark)
            return
        if self.deleted.is_set() and not self.gone:
            # Make the job disappear once its deletion delay has passed.
            sim = self.sim_snapshot()
            if sim and sim.get("deleteAt"):
                delay = max(0.0, sim["deleteAt"] - time.time())
                self.shutdown.wait(delay)
                gc_if_expired(self.jdir)

    def sim_snapshot(self):
        try:
            with self.locked() as box:
                return box["sim"]
        except JobGone:
            self.gone = True
            return None

    def transition(self, old: str, new: str) -> bool:
        ok = {"v": False}

        def fn(job, sim):
            if job["status"]["state"] != old:
                return False
            set_state(job, new)
            if new == "SCHEDULED":
                self.job = copy.deepcopy(job)
                inst = self.instance_status(job)
                job["status"]["taskGroups"]["group0"]["instances"] = [inst]
            if new == "RUNNING":
                sim["runStart"] = time.time()
            ok["v"] = True

        self.update(fn)
        return ok["v"]

    def instance_status(self, job):
        policy = (job.get("allocationPolicy", {}).get("instances") or [{}])[0].get(
            "policy", {}
        )
        return {
            "machineType": policy.get("machineType", "e2-standard-2"),
            "provisioningModel": policy.get("provisioningModel", "STANDARD"),
            "taskPack": job["taskGroups"][0].get("taskCountPerNode", "1"),
        }

    # -- tasks --------------------------------------------------------------
    def run_tasks(self) -> None:
        job = self.job
        group = job["taskGroups"][0]
        spec = group["taskSpec"]
        count = task_count(group)
        parallelism = max(1, min(int(group.get("parallelism", str(count))), count))
        if group.get("schedulingPolicy") == "IN_ORDER":
            parallelism = 1
        self.barrier = threading.Barrier(count) if count > 1 else None
        self.results: dict[int, tuple] = {}
        pending = list(range(count))
        running: dict[int, threading.Thread] = {}
        stop_since = None
        escalated = False
        while True:
            for i, t in list(running.items()):
                if not t.is_alive():
                    del running[i]
            self.refresh_if_signalled()
            if self.deleted.is_set() or self.shutdown.is_set():
                pending = []
                if self.barrier is not None:
                    self.barrier.abort()
                now = time.monotonic()
                if stop_since is None:
                    stop_since = now
                    for proc in list(self.procs.values()):
                        killpg_quiet(proc.pid, signal.SIGTERM)
                elif not escalated and now - stop_since >= self.sett["kill_grace"]:
                    escalated = True
                    for proc in list(self.procs.values()):
                        killpg_quiet(proc.pid, signal.SIGKILL)
            else:
                while pending and len(running) < parallelism:
                    index = pending.pop(0)
                    t = threading.Thread(
                        target=self._task_thread, args=(index, spec, group), daemon=True
                    )
                    running[index] = t
                    t.start()
            if not running and not pending:
                break
            # Woken by task threads finishing and by SIGUSR1/SIGTERM; the
            # timeout only bounds the reaction time of the kill escalation.
            self.wake.wait(0.25)
            self.wake.clear()
        if self.deleted.is_set() or self.shutdown.is_set():
            return
        failed = sorted(i for i, r in self.results.items() if r[0] != 0)

        def finish(job, sim):
            if job["status"]["state"] != "RUNNING":
                return False
            job["status"]["runDuration"] = fmt_duration(
                time.time() - sim.get("runStart", time.time())
            )
            if failed:
                index = failed[0]
                code, reason = self.results[index]
                why = (
                    " due to task runs over the maximum runtime"
                    if reason == "max_run_duration"
                    else ""
                )
                task_event = (
                    f"Task state is updated from RUNNING to FAILED on "
                    f"zones/{sim['location']}-a/instances/{self.instance_name(sim)}"
                    f"{why} "
                    f"with exit code {code}."
                )
                set_state(
                    job,
                    "FAILED",
                    "Job failed due to task failure. Specifically, task with index "
                    f'{index} failed due to the following task event: "{task_event}"',
                    taskState="FAILED",
                    taskExecution={"exitCode": code},
                )
            else:
                set_state(job, "SUCCEEDED")

        self.update(finish)

    @staticmethod
    def instance_name(sim) -> str:
        return str(int(sim["uid"].rsplit("-", 3)[-3], 16) % 10**12)

    def set_task_state(self, index: int, state: str, **info) -> None:
        def fn(job, sim):
            task = sim["tasks"].setdefault(str(index), {"attempts": []})
            task["state"] = state
            if info:
                task["attempts"].append(info)
            counts: dict[str, int] = {}
            total = task_count(job["taskGroups"][0])
            states = [
                sim["tasks"].get(str(i), {}).get("state", "PENDING")
                for i in range(total)
            ]
            for s in states:
                counts[s] = counts.get(s, 0) + 1
            job["status"]["taskGroups"]["group0"]["counts"] = {
                k: str(v) for k, v in sorted(counts.items())
            }

        self.update(fn)

    def _task_thread(self, index, spec, group):
        try:
            self.results[index] = self.run_task(index, spec, group)
        except Exception as e:  # never leave a task without result
            sys.stderr.write(f"task {index} crashed: {e!r}\n")
            self.results[index] = (EXIT_GENERIC, "simulator_error")
        finally:
            self.wake.set()

    def run_task(self, index: int, spec: dict, group: dict):
        max_retry = spec.get("maxRetryCount", 0)
        policies = spec.get("lifecyclePolicies", [])
        attempt = 0
        while True:
            if self.deleted.is_set() or self.shutdown.is_set():
                return (None, "aborted")
            self.set_task_state(index, "RUNNING")
            started = time.time()
            code, reason = self.run_attempt(index, attempt, spec, group)
            if self.deleted.is_set() or self.shutdown.is_set():
                return (None, "aborted")
            info = {
                "attempt": attempt,
                "exitCode": code,
                "start": started,
                "end": time.time(),
            }
            if reason:
                info["reason"] = reason
            if code == 0:
                self.set_task_state(index, "SUCCEEDED", **info)
                return (0, None)
            retry = attempt < max_retry
            for policy in policies:
                codes = policy.get("actionCondition", {}).get("exitCodes", [])
                if policy.get("action") == "FAIL_TASK" and code in codes:
                    retry = False
                if policy.get("action") == "RETRY_TASK" and code not in codes:
                    retry = False
            if not retry:
                self.set_task_state(index, "FAILED", **info)
                return (code, reason)
            self.set_task_state(index, "PENDING", **info)
            attempt += 1
