"""Which servers take jobs: checking them, taking them out, letting them back in.

A server is checked once at start (it answers, it sees the workdir, it has the
tools). One that stops answering later (a launch, status or kill call fails with
ssh's rc 255 or times out) is taken out of rotation with one log line, and tried
again in the background: after 1 s, then backing off to ``down_retry_s``. When it
answers (and passes the same checks), the jobs that were given up on there are
SIGKILLed first (they were failed as lost and may run again elsewhere; SIGKILL,
so that their wrapper cannot write an rc into the folder its retry now uses),
then the server rejoins.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping

from ...errors import CommandFailed
from . import remote
from .client import ServerUnreachable, SshClient, describe_failure
from .placement import ServerPool

__all__ = ["Rotation"]

logger = logging.getLogger("xqute")
TOOLS = "bash, setsid, nohup and /proc (Linux)"


class Rotation:
    """Servers in and out of rotation, for one scheduler."""

    def __init__(
        self,
        clients: Mapping[str, SshClient],
        *,
        workdir: str,
        marker: str,
        lost_grace_s: float,
        down_retry_s: float,
    ) -> None:
        self.clients = clients
        self.pool = ServerPool(tuple(clients))
        self.workdir = workdir
        #: a file the driver writes in the workdir at start: a server that sees
        #: it shares the workdir
        self.marker = marker
        self.lost_grace_s = lost_grace_s
        self.down_retry_s = down_retry_s
        self._probes: dict[str, asyncio.Task[None]] = {}
        self._abandoned: dict[str, set[str]] = {n: set() for n in clients}

    async def check(self, name: str) -> str | None:
        """Check a server at start: an unreachable one is taken out of rotation;
        returns the problem that must stop the run (it does not see the workdir,
        it lacks a tool), if any."""
        try:
            missing = await self._checked_missing(name)
        except (ServerUnreachable, CommandFailed) as exc:
            self.take_down(name, describe_failure(exc), at_start=True)
            return None
        return self._problem(name, missing)

    async def _checked_missing(self, name: str) -> list[str]:
        result = await self.clients[name].run(
            remote.check_command(self.marker), kind="check"
        )
        return [k for k, ok in remote.parse_check(result.stdout).items() if not ok]

    def _problem(self, name: str, missing: list[str]) -> str | None:
        target = self.clients[name].server.target
        if "workdir" in missing:
            return (
                f"ssh server {name!r} ({target}) does not see the workdir"
                f" {self.workdir}: the ssh servers must share the filesystem with the"
                " driver, at the same paths"
            )
        if missing:
            return (
                f"ssh server {name!r} ({target}) lacks {', '.join(missing)}; the ssh"
                f" backend needs {TOOLS} there"
            )
        return None

    def take_down(self, name: str, reason: str, at_start: bool = False) -> None:
        """Take a server out of rotation (once), and start trying it again."""
        if not self.pool.mark_down(name, reason):
            return
        target = self.clients[name].server.target
        if at_start:
            logger.warning(
                "ssh server %s (%s) is unreachable, taking it out of rotation: %s",
                name,
                target,
                reason,
            )
        else:
            logger.warning(
                "ssh server %s (%s) stopped answering, taking it out of rotation: %s;"
                " its %d job(s) end by their rc files, or are failed as lost after"
                " %gs",
                name,
                target,
                reason,
                self.pool.load(name),
                self.lost_grace_s,
            )
        task = self._probes.get(name)
        if task is None or task.done():
            self._probes[name] = asyncio.create_task(
                self._probe(name), name=f"ssh-probe-{name}"
            )

    def abandon(self, name: str, pairs: Iterable[str]) -> None:
        """Jobs (``PID:START``) on a server out of rotation, to kill when it
        answers again."""
        self._abandoned[name].update(pairs)

    async def _probe(self, name: str) -> None:
        delay_s = min(1.0, self.down_retry_s)
        while True:
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, self.down_retry_s)
            try:
                missing = await self._checked_missing(name)
            except (ServerUnreachable, CommandFailed) as exc:
                logger.debug(
                    "ssh server %s still down: %s", name, describe_failure(exc)
                )
                continue
            problem = self._problem(name, missing)
            if problem:
                logger.error("%s; it stays out of rotation", problem)
                return
            await self.kill_abandoned(name)
            self.pool.mark_up(name)
            logger.warning("ssh server %s answers again: back in rotation", name)
            return

    async def kill_abandoned(self, name: str, timeout_s: float | None = None) -> None:
        pairs = sorted(self._abandoned[name])
        if not pairs:
            return
        try:
            await self.clients[name].run(
                remote.kill_command(pairs, None), kind="kill", timeout_s=timeout_s
            )
        except (ServerUnreachable, CommandFailed):
            return
        self._abandoned[name].difference_update(pairs)
        logger.warning(
            "ssh server %s: killed %d job(s) given up on there", name, len(pairs)
        )

    async def aclose(self, final_kill_timeout_s: float | None = None) -> None:
        """Stop trying servers; with a timeout, make one last attempt to kill the
        jobs given up on (they must not run on forever), and name the survivors."""
        for task in self._probes.values():
            task.cancel()
        await asyncio.gather(*self._probes.values(), return_exceptions=True)
        self._probes.clear()
        if final_kill_timeout_s is None:
            return
        names = [n for n, pairs in self._abandoned.items() if pairs]
        await asyncio.gather(
            *(self.kill_abandoned(n, final_kill_timeout_s) for n in names)
        )
        for name, pairs in self._abandoned.items():
            if pairs:
                logger.warning(
                    "ssh server %s is still unreachable; jobs given up on there may"
                    " still run (PID:START %s)",
                    name,
                    " ".join(sorted(pairs)),
                )
