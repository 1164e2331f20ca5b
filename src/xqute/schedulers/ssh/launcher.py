"""Launching jobs on one server in batches: one ssh call for many submissions.

The engine submits jobs one by one, and at the start of a run (or whenever many
jobs end together) it submits ``forks`` of them at once. Each ssh call costs
about 0.1 s of the server's time to start a session, so a call per job would
make a 100-job start take seconds. Instead, submissions to a server queue up
while its previous launch call runs, and the next call launches all of them
(group commit): a lone submission still goes out at once, a burst costs a few
calls. The command line is kept below ``MAX_COMMAND_BYTES`` (Linux limits one
argument, the remote ``bash -c`` string, to 128 KiB).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ...errors import BackendError, LaunchFailed
from . import remote
from .client import SshClient

__all__ = ["LaunchFailed", "Launcher"]

logger = logging.getLogger("xqute")
MAX_COMMAND_BYTES = 64 * 1024


class Launcher:
    """Batches the launches of one server."""

    def __init__(self, client: SshClient) -> None:
        self.client = client
        self._queue: list[tuple[remote.LaunchSpec, asyncio.Future]] = []
        self._batch: list[tuple[remote.LaunchSpec, asyncio.Future]] = []
        self._task: asyncio.Task[None] | None = None

    async def launch(self, spec: remote.LaunchSpec) -> tuple[int, str]:
        """(pid, start) of the started job. Raises ServerUnreachable (the whole
        batch failed: try another server) or LaunchFailed (this job only)."""
        future: asyncio.Future[tuple[int, str]] = (
            asyncio.get_running_loop().create_future()
        )
        self._queue.append((spec, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(
                self._drain(), name=f"ssh-launch-{self.client.server.name}"
            )
        return await future

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for _, future in [*self._batch, *self._queue]:
            if not future.done():
                future.set_exception(BackendError("the ssh scheduler was closed"))
        self._batch, self._queue = [], []

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let the submissions of this loop turn join in
        while self._queue:
            batch, self._queue = _take(self._queue)
            self._batch = [(s, f) for s, f in batch if not f.done()]
            if not self._batch:
                continue
            try:
                result = await self.client.run(
                    remote.launch_command([spec for spec, _ in self._batch]),
                    kind="launch",
                )
            except Exception as exc:
                for _, future in self._batch:
                    if not future.done():
                        future.set_exception(exc)
                self._batch = []
                continue
            await self._settle(remote.parse_launch(result.stdout))

    async def _settle(self, outcome: dict[str, tuple[int, str] | str]) -> None:
        server = self.client.server.name
        orphans = []
        for spec, future in self._batch:
            got = outcome.get(spec.key)
            if future.done():  # the submitter was cancelled: undo the launch
                if isinstance(got, tuple):
                    orphans.append(f"{got[0]}:{got[1]}")
            elif isinstance(got, tuple):
                future.set_result(got)
            elif got == "unseen":
                future.set_exception(
                    LaunchFailed(
                        f"the job folder {spec.metadir} is not visible on ssh server"
                        f" {server}: it must share the filesystem with the driver",
                        unseen=True,
                    )
                )
            else:
                future.set_exception(
                    LaunchFailed(
                        f"ssh server {server} did not launch the job"
                        f" ({got or 'no result line'})"
                    )
                )
        self._batch = []
        if orphans:
            logger.warning(
                "ssh server %s: killing %d cancelled launch(es)", server, len(orphans)
            )
            with contextlib.suppress(BackendError):
                await self.client.run(remote.kill_command(orphans, None), kind="kill")


def _take(
    queue: list[tuple[remote.LaunchSpec, asyncio.Future]],
) -> tuple[list, list]:
    """The first jobs of ``queue`` that fit one command line; and the rest."""
    size = 0
    for i, (spec, _) in enumerate(queue):
        size += len(spec.script) + len(spec.metadir) + len(spec.nonce_file) + 80
        if size > MAX_COMMAND_BYTES and i > 0:
            return queue[:i], queue[i:]
    return queue, []
