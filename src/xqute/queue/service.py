"""``SchedulerService``: the client side of the daemon that hosts a worker pool
for one db (the daemon itself: ``daemon.py``; its lock and pid file:
``lockfile.py``).

- ``start()`` spawns ``python -m xqute.queue.daemon`` in a session of its own
  and returns once its pool claims jobs (a pipe says "ready", or why it failed);
  ``start(foreground=True)`` / ``run()`` runs it in this process instead.
- One daemon per db: it holds an ``fcntl.flock`` on ``<db stem>.lock`` for its
  whole life (the kernel drops it if the daemon dies, even by SIGKILL); a second
  one fails with ``AlreadyRunningError`` naming the pid in ``<db stem>.pid``.
- ``stop()``: SIGTERM, the daemon stops claiming and waits for its jobs in
  flight; ``stop(now=True)``: SIGUSR1, it kills them (recorded ``cancelled``,
  reason "killed by the pool's stop(now=True)"). A second SIGTERM/SIGINT also
  means "now". Jobs survive a daemon that is SIGKILLed; the next one adopts them.
- It logs to ``<db stem>.log``; lock, pid and log files are user-only.
- ``http=``/``monitoring=``: it also serves the HTTP API and dashboard
  (``xqute.web``) and evaluates alert rules (``xqute.monitoring``).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AlreadyRunningError, ServiceError
from ..monitoring.daemon import daemon_config, http_info
from ..monitoring.rules import MonitoringConfig
from ..processes import process_alive
from .db import make_private_dir
from .lockfile import DaemonLock, private_append
from .store import JobStore

if TYPE_CHECKING:
    from .pool import WorkerPoolManager

STALE_S = 30.0  # a pool silent this long is shown dead (recovery's default)

__all__ = ["AlreadyRunningError", "SchedulerService", "ServiceError", "process_alive"]


class SchedulerService:
    """The queue daemon for one db (see the module docstring).

    Args:
        db_path: the db (default: ``$XQUTE_DB`` or the per-user state dir).
        workers: jobs run at once, at most.
        http: serve the HTTP API and dashboard there: ``"127.0.0.1:8765"``,
            ``"8765"`` (loopback), port 0 for any free port. Default: none.
        monitoring: the ``monitoring:`` block of an xqute.yaml (http, alerts,
            notifiers, evaluation_interval), as a dict.
        **pool_opts: passed to ``WorkerPoolManager`` (cpus, memory, gpu_ids,
            pin_cpus, backend, backend_opts, reserve_after_s, recovery_policy,
            max_attempts, poll_interval_s, heartbeat_s, workdir). A backend
            class is passed to a detached daemon as "module:Class".
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] | None = None,
        workers: int = 4,
        *,
        http: str | None = None,
        monitoring: Mapping[str, Any] | None = None,
        **pool_opts: Any,
    ) -> None:
        self.store = JobStore(db_path)
        self.db_path = self.store.db_path
        self.workers = workers
        self.http = http
        self.monitoring = dict(monitoring) if monitoring else None
        self.pool_opts = pool_opts
        self.lock = DaemonLock(self.store)
        self.lock_path = self.lock.lock_path
        self.pid_path = self.lock.pid_path
        self.log_path = self.lock.log_path
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<SchedulerService {self.db_path}>"

    # ------------------------------------------------------------------ start
    def start(
        self, foreground: bool = False, timeout_s: float = 30.0
    ) -> dict[str, Any]:
        """Start the daemon; return its ``status()`` once it is ready.

        Bad pool options raise here (``ConfigError``), before anything starts."""
        pool = self.make_pool()
        self.monitoring_config()  # a bad monitoring block too
        if foreground:
            self.run(pool=pool)
            return self.status()
        running = self._running_pid()
        if running is not None and running > 0:  # -1: let the daemon's lock decide
            raise AlreadyRunningError(self.lock.already_running_message(running))
        make_private_dir(self.db_path.parent)
        rfd, wfd = os.pipe()
        config = {"db_path": str(self.db_path), "workers": self.workers,
                  "http": self.http, "monitoring": self.monitoring}  # fmt: skip
        config.update(_portable(self.pool_opts))
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH")) if p
        )
        try:
            with private_append(self.log_path) as log:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "xqute.queue.daemon", json.dumps(config),
                     str(wfd)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    pass_fds=(wfd,),
                    start_new_session=True,  # out of reach of the caller's Ctrl-C
                    cwd=str(self.db_path.parent),
                    env=env,
                )  # fmt: skip
        finally:
            os.close(wfd)
        proc = self._proc
        # reap it whenever it exits, so it never lingers as a zombie of ours
        threading.Thread(
            target=proc.wait, name="xqute-daemon-reaper", daemon=True
        ).start()
        try:
            message = _read_ready(rfd, timeout_s, proc)
        finally:
            os.close(rfd)
        if message.startswith("ok"):
            return self.status()
        if message.startswith("already-running"):
            raise AlreadyRunningError(message.partition(" ")[2])
        if message.startswith("error "):  # the cause, in one line (its
            # traceback is in the log)
            raise ServiceError(
                f"the queue daemon did not start: {message[6:]} (details in"
                f" {self.log_path})"
            )
        tail = _tail(self.log_path)
        raise ServiceError(
            f"the queue daemon did not start: {message or 'no answer'}"
            + (f"\n--- {self.log_path} (last lines)\n{tail}" if tail else "")
        )

    def run(
        self, ready_fd: int | None = None, pool: WorkerPoolManager | None = None
    ) -> None:
        """Run the daemon in this process until it is stopped (by a signal)."""
        from .daemon import serve

        pool = pool or self.make_pool()
        serve(self.lock, pool, self.monitoring_config(), ready_fd)

    def make_pool(self) -> WorkerPoolManager:
        """The daemon's pool, built but not started: bad options raise here."""
        from .daemon import make_pool

        pool = make_pool(self.store, self.workers, self.pool_opts)
        _portable(self.pool_opts)  # and a detached daemon must get them as JSON
        return pool

    def monitoring_config(self) -> MonitoringConfig:
        """The monitoring block, parsed (ConfigError for a bad one)."""
        return daemon_config(self.monitoring, self.http, self.store.db)

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        """Whether the daemon runs (its pid, since when, its log), its pool, and
        the job counts of the db."""
        pid = self._running_pid()
        info = self.lock.pidfile() if pid is not None else {}
        running = pid is not None
        if pid is not None and pid <= 0:
            pid = None  # starting: locked, pid file not written yet
        workers = []
        counts: dict[str, int] = {}
        if self.db_path.exists():
            workers = [_liveness(w) for w in self.store.list_workers(False)]
            counts = self.store.count_jobs()
        return {
            "running": running,
            "pid": pid,
            "started_at": info.get("started_at"),
            "db": str(self.db_path),
            "log": str(self.log_path),
            "http": http_info(self.store, pid) if running else None,
            "workers": workers,
            "jobs": counts,
        }

    # ------------------------------------------------------------------ stop
    def stop(
        self, now: bool = False, wait: bool = True, timeout_s: float | None = None
    ) -> bool:
        """Stop the daemon: it stops claiming and waits for its jobs in flight;
        ``now`` kills them first. With ``wait``, return once it has exited
        (ServiceError after ``timeout_s``). False if no daemon was running."""
        pid = self._running_pid()
        if pid is None:
            return False
        deadline = time.monotonic() + 5.0
        while pid is not None and pid <= 0:  # locked, pid file not written yet
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"a queue daemon holds {self.lock_path} but its pid file"
                    f" {self.pid_path} is unreadable; is it still starting?"
                )
            time.sleep(0.05)
            pid = self._running_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, signal.SIGUSR1 if now else signal.SIGTERM)
        except ProcessLookupError:
            return False
        if not wait:
            return True
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self._running_pid() is not None:
            if deadline is not None and time.monotonic() > deadline:
                raise ServiceError(
                    f"the queue daemon (pid {pid}) is still running after"
                    f" {timeout_s:g}s (jobs in flight?); stop(now=True) kills them"
                )
            time.sleep(0.05)
        return True

    # ------------------------------------------------------------------ lock
    def _running_pid(self) -> int | None:
        return self.lock.running_pid()

    def acquire_lock(self) -> int:
        """Take the daemon lock (see ``DaemonLock.acquire``); the daemon does."""
        return self.lock.acquire()

    def release_lock(self, fd: int) -> None:
        self.lock.release(fd)


# ---------------------------------------------------------------------- helpers
def _portable(opts: Mapping[str, Any]) -> dict[str, Any]:
    """Pool options as JSON for a detached daemon (a class becomes module:Class)."""
    out = dict(opts)
    backend = out.get("backend")
    if isinstance(backend, type):
        out["backend"] = f"{backend.__module__}:{backend.__qualname__}"
    for key in ("workdir",):
        if out.get(key) is not None:
            out[key] = os.path.abspath(os.fspath(out[key]))
    try:
        json.dumps(out)
    except TypeError as exc:
        raise ServiceError(f"service options must be JSON-serialisable: {exc}") from exc
    return out


def _read_ready(fd: int, timeout_s: float, proc: subprocess.Popen[bytes]) -> str:
    """The daemon's first line on the readiness pipe ('' if it died silently)."""
    deadline = time.monotonic() + timeout_s
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            return f"no answer within {timeout_s:g}s (killed it)"
        readable, _, _ = select.select([fd], [], [], min(left, 0.5))
        if readable:
            chunk = os.read(fd, 4096)
            if not chunk:
                break  # the pipe closed: it exited
            data += chunk
    return data.decode(errors="replace").strip()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _liveness(worker: dict[str, Any]) -> dict[str, Any]:
    """A pool the db says runs, as it is: "dead" when its process on this host
    is gone, or it has not beaten for ``STALE_S`` (a SIGKILLed daemon leaves
    its row "running" until another pool notices)."""
    import socket

    gone = worker["host"] == socket.gethostname() and not process_alive(worker["pid"])
    if gone or time.time() - worker["heartbeat_at"] > STALE_S:
        worker = {**worker, "state": "dead"}
    return worker
