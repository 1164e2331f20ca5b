"""The local backend: jobs are processes on this machine.

Each job's wrapped script runs as ``bash job.wrapped.local`` in a session (and so a
process group) of its own; its end is learned from the process itself: a pidfd
registered with the event loop on Linux, a waiting thread elsewhere; no sleeping
and no polling. When the wrapper exits, what is left of its process group is
killed, so a job's background processes end with it. A watcher process
(``ProcessGroupGuard``) kills every job if the driver itself dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..diskfull import disk_full_reason, is_disk_full
from ..errors import BackendError, ConfigError
from ..job import Job
from ..outcome import Observation, Seen
from ..processes import (
    boot_ticks,
    child_missed_term,
    has_exited,
    killpg,
    runs_script,
    wait_no_reap,
)
from ..status import JobOutcome, JobStatus
from .base import Scheduler
from .helpers.guard import ProcessGroupGuard

__all__ = ["LocalScheduler"]

_HAS_PIDFD = hasattr(os, "pidfd_open")
# A killed job's group gets SIGKILL this long after its grace if still alive:
# its wrapper, which gives the group the grace, records the outcome first.
ESCALATE_SLACK_S = 0.5
# A TERM that lands while bash forks the command reaches bash alone (it blocks
# TERM around fork, and the child starts with no pending signal); bash then
# defers its trap until the unsignalled command ends. This long after a kill,
# a command that missed the TERM (started after it, or lives on although a TERM
# would have ended it) gets its own (once; Linux only).
MISSED_TERM_CHECK_S = 0.2


@dataclass(slots=True)
class _Proc:
    popen: subprocess.Popen[bytes]
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    kill_requested: bool = False


class LocalScheduler(Scheduler):
    """Run jobs as local processes (the default backend)."""

    name: ClassVar[str] = "local"
    own_process_group: ClassVar[bool] = True
    jid_is_wrapper_pid: ClassVar[bool] = True
    backend_options: ClassVar[dict[str, str]] = {
        "orphan_guard": "kill this driver's jobs if the driver dies (default true);"
        " the queue daemon turns it off so that its jobs survive a daemon restart",
    }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._procs: dict[Job, _Proc] = {}
        guard = self.config.get("orphan_guard", True)
        if not isinstance(guard, bool):
            raise ConfigError(f"orphan_guard {guard!r} must be true or false")
        self._guard = ProcessGroupGuard(self.kill_grace_s) if guard else None
        self._bash = "bash"
        self._use_pidfd = _HAS_PIDFD
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await super().start()
        bash = shutil.which("bash")
        if bash is None:
            raise BackendError("the local scheduler needs bash, and none is on PATH")
        self._bash = bash

    async def aclose(self) -> None:
        await super().aclose()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        # The engine has killed and awaited its jobs unless the run was cancelled
        # or failed: then TERM what is left (once: not a job killed already),
        # SIGKILL it after the grace, reap it.
        procs, self._procs = list(self._procs.values()), {}
        for proc in procs:
            if not proc.kill_requested:
                killpg(proc.popen.pid, signal.SIGTERM)
        deadline = asyncio.get_running_loop().time() + self.kill_grace_s
        for proc in procs:
            while (
                proc.popen.poll() is None
                and asyncio.get_running_loop().time() < deadline
            ):
                await asyncio.sleep(0.05)
            killpg(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait()
            proc.exited.set()  # a pending escalation must not signal a reused pid
            if self._guard is not None:
                self._guard.discard(proc.popen.pid)
        if self._guard is not None:
            self._guard.close()

    # ------------------------------------------------------------------ seed API
    def launch_argv(self, job: Job, script: Path) -> list[str]:
        """The command that runs a job's wrapped script (apptainer wraps it)."""
        return [self._bash, str(script)]

    async def submit_job(self, job: Job) -> int:
        script = await self.wrapped_job_script(job)
        popen = subprocess.Popen(
            self.launch_argv(job, script),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # the wrapper redirects to job.stderr itself
            start_new_session=True,
        )
        if self._guard is not None:
            self._guard.add(popen.pid)
        self._procs[job] = _Proc(popen)
        return popen.pid

    async def kill_job(self, job: Job) -> None:
        await self.kill_jobs([job])

    async def kill_jobs(
        self, jobs: Sequence[Job], grace_s: float | None = None
    ) -> None:
        """One SIGTERM to each job's process group, SIGKILL after the grace
        (``grace_s``, default ``kill_grace_s``) if it is still alive; a job
        asked to die a second time (a second Ctrl-C) is SIGKILLed at once."""
        grace_s = self.kill_grace_s if grace_s is None else grace_s
        for job in jobs:
            proc = self._procs.get(job)
            if proc is None:
                await self._kill_adopted(job, grace_s)
            elif proc.exited.is_set():
                continue
            elif proc.kill_requested:  # asked twice: no more grace
                killpg(proc.popen.pid, signal.SIGKILL)
            else:
                proc.kill_requested = True
                sent_tick = boot_ticks()
                killpg(proc.popen.pid, signal.SIGTERM)
                loop = asyncio.get_running_loop()
                loop.call_later(MISSED_TERM_CHECK_S, self._missed, job, proc, sent_tick)
                loop.call_later(grace_s + ESCALATE_SLACK_S, self._escalate, proc)

    async def job_is_running(self, job: Job) -> bool:
        """For a job this driver started, or one started earlier (by pid + script)."""
        proc = self._procs.get(job)
        if proc is not None:
            return not proc.exited.is_set() and not has_exited(proc.popen.pid)
        return self._adopted_pid(job, await job.get_jid()) is not None

    def _adopted_pid(self, job: Job, jid: str | None) -> int | None:
        """The pid of a job started by an earlier driver, if that job still runs:
        the pid must still run this job's wrapped script (pids are reused)."""
        if not jid or not jid.isdigit():
            return None
        script = str(job.wrapped_script_file(self.name))
        return int(jid) if runs_script(int(jid), script) else None

    async def _kill_adopted(self, job: Job, grace_s: float) -> None:
        pid = self._adopted_pid(job, await job.get_jid())
        if pid is None:
            return
        killpg(pid, signal.SIGTERM)

        def escalate() -> None:  # only if that pid still runs this job
            if self._adopted_pid(job, str(pid)) is not None:
                killpg(pid, signal.SIGKILL)

        asyncio.get_running_loop().call_later(grace_s + ESCALATE_SLACK_S, escalate)

    # ------------------------------------------------------------------ engine API
    async def wait_done(self, job: Job) -> Observation | None:
        proc = self._procs.get(job)
        if proc is None:
            return await self._wait_adopted(job)
        await self.mark_running(job)
        if self._ticker is None and self.hooks.implements("on_job_polling"):
            self._ticker = asyncio.create_task(self._tick(), name="local-polling-hook")
        await self._wait_exit(proc)  # if cancelled, the job stays for aclose()
        self._procs.pop(job, None)
        popen = proc.popen
        killpg(popen.pid, signal.SIGKILL)  # leftovers; the zombie still holds the pgid
        returncode = popen.wait()
        if self._guard is not None:
            self._guard.discard(popen.pid)
        if returncode == 0:  # the wrapper exits with the rc it recorded
            return Observation(Seen.DONE, JobOutcome.SUCCEEDED, None, 0)
        if job.read_rc_file() is not None:
            return None
        # the wrapper died before it could write its rc (SIGKILL, OOM killer ...)
        # or could not write it (a full disk)
        rc = 128 - returncode if returncode < 0 else returncode
        try:
            job.rc_file.write_text(f"{rc}\n")
            job.write_status(JobStatus.FAILED if rc else JobStatus.FINISHED)
        except OSError as exc:
            what = f"job {job.index} could not write {job.rc_file.name}"
            return Observation(
                Seen.DONE,
                JobOutcome.FAILED,
                disk_full_reason(exc, what) if is_disk_full(exc) else f"{what}: {exc}",
                rc,
            )
        sig = signal.Signals(-returncode).name if returncode < 0 else None
        return Observation(
            Seen.DONE,
            JobOutcome.CANCELLED if sig else None,
            f"the job's wrapper was killed by {sig}" if sig else None,
            rc,
        )

    async def _wait_adopted(self, job: Job) -> Observation | None:
        """A job an earlier driver started (the queue service re-attaching after
        a restart): followed by a pidfd (it is not our child, so it cannot be
        waited for), or by polling where there are no pidfds."""
        pid = self._adopted_pid(job, await job.get_jid())
        if pid is None:
            return None  # it ended: its rc file says how
        await self.mark_running(job)
        if await self._pidfd_wait(pid, asyncio.Event()):
            return None
        return await super().wait_done(job)

    async def _pidfd_wait(self, pid: int, exited: asyncio.Event) -> bool:
        """Wait for ``pid`` to exit through a pidfd; False if there is none."""
        if not self._use_pidfd:
            return False
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return False
        loop = asyncio.get_running_loop()
        loop.add_reader(fd, exited.set)
        try:
            await exited.wait()
        finally:
            loop.remove_reader(fd)
            os.close(fd)
        return True

    async def _wait_exit(self, proc: _Proc) -> None:
        """Wait until the wrapper exits, without reaping it."""
        if not await self._pidfd_wait(proc.popen.pid, proc.exited):
            await asyncio.to_thread(wait_no_reap, proc.popen.pid)
            proc.exited.set()

    async def _tick(self) -> None:
        """Completion needs no polling here; this only serves plugins that
        implement on_job_polling (it runs only when one does)."""
        counter = 0
        while True:
            await asyncio.sleep(self.poll_interval_s)
            counter += 1
            for job in list(self._procs):
                await self.hooks.acall("on_job_polling", self, job, counter)

    def _missed(self, job: Job, proc: _Proc, sent_tick: int | None) -> None:
        """TERM the job again if its command missed the TERM, unless its
        wrapper got the TERM and is giving the job its grace (its reason is
        recorded: its own children since are its ``sleep``s)."""
        if (
            not proc.exited.is_set()
            and child_missed_term(proc.popen.pid, sent_tick)
            and "reason" not in job.read_info()
        ):
            killpg(proc.popen.pid, signal.SIGTERM)

    def _escalate(self, proc: _Proc) -> None:
        """SIGKILL a killed job's group if it outlived the grace period."""
        if not proc.exited.is_set():
            killpg(proc.popen.pid, signal.SIGKILL)
