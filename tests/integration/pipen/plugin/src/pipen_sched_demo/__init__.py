"""A pipen scheduler plugin as xqute's seed 001 describes it: subclass
``xqute.schedulers.scheduler.Scheduler`` (with pipen's ``SchedulerPostInit``),
implement ``submit_job``, ``kill_job`` and ``job_is_running``, run the script
``wrapped_job_script`` wrote. Registered through the ``pipen_sched`` entry point.

Each job runs as ``bash <wrapped script>`` in a session of its own; the script's
first line records who ran it, so a test can tell this scheduler ran the jobs.
"""

import asyncio
import os
import signal

from pipen.scheduler import SchedulerPostInit

from xqute.schedulers.scheduler import Scheduler


class DemoScheduler(SchedulerPostInit, Scheduler):
    name = "demo"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._procs = {}

    async def submit_job(self, job):
        script = await self.wrapped_job_script(job)
        (job.metadir / "ran-by").write_text(f"{self.name}\n")
        proc = await asyncio.create_subprocess_exec(
            "bash", str(script), start_new_session=True
        )
        self._procs[job.index] = proc
        return proc.pid

    async def kill_job(self, job):
        proc = self._procs.get(job.index)
        if proc is not None and proc.returncode is None:
            os.killpg(proc.pid, signal.SIGTERM)

    async def job_is_running(self, job):
        proc = self._procs.get(job.index)
        return proc is not None and proc.returncode is None
