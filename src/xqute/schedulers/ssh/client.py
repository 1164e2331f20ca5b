"""One server's ssh connection: the argv of every call, and running it.

Every call goes through ``run_command`` with the same option set, so that the
first call to a server becomes the master connection (``ControlMaster=auto``) and
every later call is a session multiplexed over it: about 0.1 s per call instead
of 0.3 s, and one TCP connection per server however many jobs run there.

At most ``max_sessions`` calls run at once per server: each is a session on the
master, and sshd refuses sessions past its ``MaxSessions`` (10 by default), after
which ssh silently opens a new connection per call, and sshd starts dropping
new connections past ``MaxStartups`` (10 unauthenticated at once by default).

Options come in three groups, and for ssh the first value of an option wins:

1. fixed: key-based auth only (``BatchMode=yes``: never a password prompt that
   would hang the driver), the master connection, no tty;
2. the server's ``args`` (``-F``, ``-o UserKnownHostsFile=...``, a ProxyJump ...);
3. defaults that ``args`` may override: ``ConnectTimeout=5`` (covers the TCP
   connect and the banner, so a hung server fails in seconds instead of the
   kernel's two minutes) and ``ServerAliveInterval=5``/``ServerAliveCountMax=3``
   (without them a call through a master whose server went silent hangs forever).

ssh exits 255 when ssh itself failed (refused, timed out, auth, host key); the
remote code this backend runs never exits 255, so 255 (or a call that outlives
its time limit) means "the server is unreachable".
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable

from ...errors import BackendError, CommandFailed, ServerUnreachable
from ..helpers.command import CommandResult, run_command
from .config import ServerConfig

__all__ = [
    "ServerUnreachable",
    "SshClient",
    "describe_failure",
    "make_ctrl_dirs",
    "remove_ctrl_dirs",
]

SSH_FAILED_RC = 255
DEFAULT_OPTIONS = (
    "ConnectTimeout=5",
    "ServerAliveInterval=5",
    "ServerAliveCountMax=3",
    "LogLevel=ERROR",
)


class SshClient:
    """Runs commands on one server. ``ctrl_path`` is set by the scheduler at start
    (the socket lives in a directory private to this driver run)."""

    def __init__(self, ssh: str, server: ServerConfig, timeout_s: float) -> None:
        self.ssh = ssh
        self.server = server
        self.timeout_s = timeout_s
        self.ctrl_path: str | None = None
        #: ssh commands run, by kind ("check", "launch", "status", "kill"), for
        #: tests and benchmarks
        self.calls: Counter[str] = Counter()
        self._sessions = asyncio.Semaphore(server.max_sessions)

    def argv(self, remote_cmd: str) -> list[str]:
        """The full ssh command line for one remote shell command.

        ``--`` ends the options, so a host can never be read as one; the remote
        command is ONE argument (ssh would join several with spaces anyway).
        """
        srv = self.server
        argv = [self.ssh, "-T", "-o", "BatchMode=yes"]
        if self.ctrl_path is not None:
            argv += [
                "-o",
                "ControlMaster=auto",
                "-o",
                # a literal path: '%' would start a token
                f"ControlPath={self.ctrl_path.replace('%', '%%')}",
                "-o",
                f"ControlPersist={srv.ctrl_persist}",
            ]
        if srv.keyfile:
            argv += ["-i", srv.keyfile, "-o", "IdentitiesOnly=yes"]
        if srv.user:
            argv += ["-l", srv.user]
        if srv.port:
            argv += ["-p", str(srv.port)]
        argv += srv.args
        for option in DEFAULT_OPTIONS:
            argv += ["-o", option]
        argv += ["--", srv.host, remote_cmd]
        return argv

    def control_argv(self, operation: str) -> list[str]:
        """``ssh -O <operation>`` for this server's master (check, exit)."""
        argv = self.argv("true")[:-3]  # without "-- host cmd"
        return [*argv, "-O", operation, "--", self.server.host]

    async def run(
        self, remote_cmd: str, *, kind: str, timeout_s: float | None = None
    ) -> CommandResult:
        """Run a command on the server; ``kind`` says what it is (``calls``).

        Raises ServerUnreachable when ssh failed (rc 255) or the call outlived its
        time limit, CommandFailed (with the remote stderr) when the command itself
        exited non-zero or the ssh client could not be started.
        """
        timeout_s = timeout_s or self.timeout_s
        try:
            async with self._sessions:
                self.calls[kind] += 1
                result = await run_command(
                    self.argv(remote_cmd), timeout_s=timeout_s, check=False
                )
        except CommandFailed as exc:
            if exc.rc is None:  # killed at the time limit
                raise ServerUnreachable(
                    self.server.name, f"no answer within {timeout_s:g}s"
                ) from exc
            raise
        if result.rc == SSH_FAILED_RC:
            raise ServerUnreachable(
                self.server.name,
                _last_line(result.stderr) or "ssh failed (rc 255) without a message",
            )
        if result.rc != 0:
            raise CommandFailed(result.argv, result.rc, result.stdout, result.stderr)
        return result

    async def close(self) -> None:
        """Ask the master connection to exit (no-op when there is none)."""
        if self.ctrl_path is None or not os.path.exists(self.ctrl_path):
            return
        with contextlib.suppress(BackendError, OSError):
            await run_command(self.control_argv("exit"), timeout_s=5, check=False)


def make_ctrl_dirs(clients: Iterable[SshClient]) -> list[str]:
    """Give each client a socket in a private directory (mode 0700) inside its
    server's ``ctrl_dir``: ``<ctrl_dir>/xq-XXXXXXXX/s<index>``. Private to this run,
    so closing our masters never closes another driver's."""
    made: dict[str, str] = {}
    for client in clients:
        ctrl_dir = client.server.ctrl_dir
        if ctrl_dir not in made:
            os.makedirs(ctrl_dir, exist_ok=True)
            made[ctrl_dir] = tempfile.mkdtemp(prefix="xq-", dir=ctrl_dir)
        client.ctrl_path = os.path.join(made[ctrl_dir], f"s{client.server.index}")
    return list(made.values())


def remove_ctrl_dirs(dirs: Iterable[str]) -> None:
    for path in dirs:
        shutil.rmtree(path, ignore_errors=True)


def describe_failure(exc: BaseException) -> str:
    """Why a call to a server failed, in one line."""
    if isinstance(exc, ServerUnreachable):
        return exc.reason
    if isinstance(exc, CommandFailed):
        line = _last_line(exc.stderr) or _last_line(exc.stdout)
        return f"a command exited with {exc.rc}" + (f": {line}" if line else "")
    return str(exc)


def _last_line(text: str) -> str:
    """The last non-empty line of a command's output ('' when there is none):
    ssh and the remote shell put the error that counts last."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
