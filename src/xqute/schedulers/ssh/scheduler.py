"""The ssh backend: jobs run detached on a set of servers that share the workdir.

Where a command runs (``SshClient``: one multiplexed connection per server) is
kept apart from how jobs are managed (this module) and from the shell code that
runs on the server (``remote``: pure builders and parsers).

- start(): one call per server checks that it answers, sees the workdir (a marker
  file the driver just wrote) and has bash, setsid, nohup and /proc. That call
  also opens the server's master connection. An unreachable server is taken out
  of rotation; a server that does not see the workdir is an error.
- submit: the least-loaded server in rotation (ties: round robin) starts the
  wrapped script detached, in a session of its own; ``job.jid`` is
  ``server:pid:start``, so status and kill survive pid reuse. Submissions that
  come together go out in one call per server (``Launcher``). If the server does
  not answer, it leaves the rotation and the next one is tried.
- poll: ONE call per server per cycle for all its jobs. A job that ended is
  resolved from its rc file (by the base). When a server stops answering, its
  jobs are reported gone: each is resolved from its rc file if the wrapper
  writes one (the filesystem is shared), else failed as lost after
  ``lost_grace_s``, which the error strategy may retry on another server.
- A server out of rotation is tried again in the background (``Rotation``); when
  it answers, the jobs that were given up on there are killed (they may have
  been retried elsewhere) and it rejoins.
- kill: one call per server TERMs the process groups and leaves a detached
  SIGKILL behind for after the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from ... import checks
from ...errors import BackendError, CommandFailed, ConfigError
from ...job import Job
from ...outcome import GONE, RUNNING, Observation, Seen
from ...status import JobOutcome, JobStatus
from ..base import Scheduler
from ..helpers.command import chunks
from ..seed import SeedThroughEngineAPI
from . import remote
from .client import (
    ServerUnreachable,
    SshClient,
    describe_failure,
    make_ctrl_dirs,
    remove_ctrl_dirs,
)
from .config import SERVER_KEYS, parse_servers
from .launcher import Launcher, LaunchFailed
from .rotation import Rotation

__all__ = ["SshScheduler"]

logger = logging.getLogger("xqute")

#: most PID:START pairs in one status/kill command (keeps it well below the
#: limits on command lines and ssh request sizes)
MAX_PAIRS_PER_CALL = 1000


class SshScheduler(SeedThroughEngineAPI, Scheduler):
    """Run jobs on ssh servers that share the workdir with the driver."""

    name: ClassVar[str] = "ssh"
    opt_prefixes: ClassVar[tuple[str, ...]] = ("ssh_",)
    own_process_group: ClassVar[bool] = True
    stale_trial_guard: ClassVar[bool] = True
    backend_options: ClassVar[dict[str, str]] = {
        "ssh": "the ssh client to run (default 'ssh')",
        "servers": f"name -> {{{', '.join(SERVER_KEYS)}}}; host is required",
        "command_timeout_s": "seconds one ssh call may take before it is killed and"
        " its server counts as unreachable (default 30)",
        "down_retry_s": "longest wait between attempts to reach a server out of"
        " rotation; it rejoins when it answers (default 30)",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ssh = self.config.get("ssh", "ssh")
        if not isinstance(ssh, str | os.PathLike) or not os.fspath(ssh):
            raise ConfigError(f"ssh {ssh!r} must be the ssh client's name or path")
        self.ssh = os.fspath(ssh)
        self.servers = parse_servers(self.config.get("servers"))
        self.command_timeout_s = checks.seconds(
            "command_timeout_s", self.config.get("command_timeout_s", 30.0)
        )
        self.down_retry_s = checks.seconds(
            "down_retry_s", self.config.get("down_retry_s", 30.0)
        )
        self.clients = {
            name: SshClient(self.ssh, server, self.command_timeout_s)
            for name, server in self.servers.items()
        }
        self.launchers = {name: Launcher(c) for name, c in self.clients.items()}
        # written at start: a server that sees it shares the workdir
        self._marker: Path = self.workdir / f".xqute-ssh-{secrets.token_hex(6)}"
        self.rotation = Rotation(
            self.clients,
            workdir=str(self.workdir),
            marker=str(self._marker),
            lost_grace_s=self.lost_grace_s,
            down_retry_s=self.down_retry_s,
        )
        self.pool = self.rotation.pool
        self._placed: dict[Job, remote.Jid] = {}
        self._killed: set[Job] = set()
        self._ctrl_dirs: list[str] = []

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        await super().start()
        if shutil.which(self.ssh) is None:
            raise BackendError(f"the ssh client {self.ssh!r} is not found/executable")
        try:
            self._ctrl_dirs = make_ctrl_dirs(self.clients.values())
            self._marker.write_text("written by the xqute driver to test sharing\n")
            problems = await asyncio.gather(*map(self.rotation.check, self.servers))
            problems = [p for p in problems if p]
            if problems:
                raise BackendError("; ".join(problems))
            if not self.pool.up():
                raise BackendError(
                    f"no ssh server is reachable: {self.pool.describe_down()}"
                )
            logger.info("ssh: running jobs on %s", ", ".join(self.pool.up()))
        except BaseException:
            await self.rotation.aclose()
            await self._close_connections()
            raise

    async def aclose(self) -> None:
        await super().aclose()
        await self.rotation.aclose(final_kill_timeout_s=10.0)
        await self._close_connections()

    async def _close_connections(self) -> None:
        await asyncio.gather(
            *(launcher.aclose() for launcher in self.launchers.values())
        )
        await asyncio.gather(*(c.close() for c in self.clients.values()))
        remove_ctrl_dirs(self._ctrl_dirs)
        self._ctrl_dirs = []
        with contextlib.suppress(OSError):
            self._marker.unlink(missing_ok=True)

    # ------------------------------------------------------------------ seed API
    async def submit_job(self, job: Job) -> str:
        script = await self.wrapped_job_script(job)
        nonce_file = job.metadir / "job.launch"
        while True:
            name = self.pool.take()
            if name is None:
                raise BackendError(
                    f"no ssh server is left in rotation: {self.pool.describe_down()}"
                )
            nonce = f"{name}-{secrets.token_hex(8)}"
            nonce_file.write_text(f"{nonce}\n")
            spec = remote.LaunchSpec(
                str(job.index), str(script), str(job.metadir), str(nonce_file), nonce
            )
            try:
                pid, start = await self.launchers[name].launch(spec)
            except BaseException as exc:
                nonce_file.write_text("abandoned\n")  # a late launch must not run
                self.pool.release(name)
                if isinstance(exc, ServerUnreachable | CommandFailed):
                    self.rotation.take_down(name, describe_failure(exc))
                    continue
                if isinstance(exc, LaunchFailed) and exc.unseen:
                    self.rotation.take_down(name, str(exc))  # lost the shared disk?
                    continue
                raise
            jid = remote.Jid(name, pid, start)
            self._placed[job] = jid
            if job.status == JobStatus.KILLING:  # killed while it was being launched
                await self.kill_jobs([job])
            return str(jid)

    def is_transient(self, exc: BaseException) -> bool:
        # an unreachable server was already replaced by another one in submit_job
        return False

    # ------------------------------------------------------------------ engine API
    async def kill_jobs(
        self, jobs: Sequence[Job], grace_s: float | None = None
    ) -> None:
        by_server = self._group(jobs)
        self._killed.update(j for items in by_server.values() for j, _ in items)
        await asyncio.gather(*(self._kill_on(n, i) for n, i in by_server.items()))

    async def _kill_on(self, name: str, items: list[tuple[Job, remote.Jid]]) -> None:
        pairs = [jid.pair for _, jid in items if jid.start]
        if not pairs:
            return
        if self.pool.is_up(name):
            try:
                for chunk in chunks(pairs, MAX_PAIRS_PER_CALL):
                    await self.clients[name].run(
                        remote.kill_command(chunk, self.kill_grace_s + 1), kind="kill"
                    )
                return
            except ServerUnreachable as exc:
                self.rotation.take_down(name, exc.reason)
            except CommandFailed as exc:
                logger.error("ssh server %s: kill failed: %s", name, exc)
                return
        logger.warning(
            "ssh server %s is out of rotation: %d job(s) there will be killed when"
            " it answers again",
            name,
            len(pairs),
        )
        self.rotation.abandon(name, pairs)

    async def poll_jobs(self, jobs: Sequence[Job]) -> dict[Job, Observation]:
        out: dict[Job, Observation] = dict.fromkeys(jobs, GONE)
        by_server = self._group(jobs)
        found = await asyncio.gather(
            *(self._poll_server(n, items) for n, items in by_server.items())
        )
        for observations in found:
            out.update(observations)
        return out

    async def _poll_server(
        self, name: str, items: list[tuple[Job, remote.Jid]]
    ) -> dict[Job, Observation]:
        """ONE status call for all of a server's jobs (more only past 1000)."""
        if not self.pool.is_up(name):
            return {}
        asked = [(job, jid) for job, jid in items if jid.start]
        alive: dict[str, bool] = {}
        try:
            for chunk in chunks([jid.pair for _, jid in asked], MAX_PAIRS_PER_CALL):
                result = await self.clients[name].run(
                    remote.status_command(chunk), kind="status"
                )
                alive.update(remote.parse_status(result.stdout))
        except (ServerUnreachable, CommandFailed) as exc:
            self.rotation.take_down(name, describe_failure(exc))
            return {}
        return {job: RUNNING if alive.get(jid.pair) else GONE for job, jid in asked}

    async def resolve_gone(self, jobs: Sequence[Job]) -> dict[Job, Observation]:
        """A job we killed whose leader is gone and that left no rc file was
        SIGKILLed with its wrapper (the wrapper writes its rc before the leader
        can exit): it was killed, nothing to wait for."""
        out = {}
        for job in jobs:
            jid = self._placed.get(job)
            if job in self._killed and jid and self.pool.is_up(jid.server):
                out[job] = Observation(
                    Seen.DONE,
                    JobOutcome.KILLED,
                    f"killed with its process group on {jid.server}",
                )
        return out

    async def wait_done(self, job: Job) -> Observation | None:
        try:
            observation = await super().wait_done(job)
        finally:
            jid = self._placed.pop(job, None)
            self._killed.discard(job)
            if jid is not None:
                self.pool.release(jid.server)
        if (
            jid is not None
            and observation is not None
            and observation.outcome is JobOutcome.LOST
            and not self.pool.is_up(jid.server)
        ):
            if jid.start:  # kill it when the server answers again
                self.rotation.abandon(jid.server, [jid.pair])
            observation = Observation(
                Seen.DONE,
                JobOutcome.LOST,
                f"ssh server {jid.server} stopped answering"
                f" ({self.pool.reason(jid.server)}) and the job wrote no rc file"
                f" within {self.lost_grace_s:g}s",
            )
        return observation

    # ------------------------------------------------------------------ helpers
    def _group(self, jobs: Sequence[Job]) -> dict[str, list[tuple[Job, remote.Jid]]]:
        """Jobs by server, from what submit recorded (or the jid, if re-attached)."""
        by_server: dict[str, list[tuple[Job, remote.Jid]]] = {}
        for job in jobs:
            jid = self._placed.get(job) or remote.parse_jid(job.jid or "")
            if jid is not None and jid.server in self.servers:
                by_server.setdefault(jid.server, []).append((job, jid))
        return by_server
