"""Running one task attempt: mounts, environment, processes, timeouts."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time

from .common import (
    EXIT_GENERIC,
    EXIT_MAX_RUNTIME,
    SELF,
    atomic_write_json,
    buckets_dir,
    exit_code_of,
    killpg_quiet,
    parse_duration,
    proc_starttime,
    read_json,
)
from .store import JobGone
from .validate import task_count


class AttemptMixin:
    """Runs task attempts; mixed into Runner (uses its locks and events)."""

    def task_env(
        self, index: int, attempt: int, spec: dict, group: dict, runnable: dict
    ) -> dict:
        sim_env = self.sim_snapshot() or {}
        env = dict(sim_env.get("passEnv", {}))
        env.update(spec.get("environments", {}))
        env.update(spec.get("environment", {}).get("variables", {}))
        task_envs = group.get("taskEnvironments", [])
        if index < len(task_envs):
            env.update(task_envs[index].get("variables", {}))
        env.update(runnable.get("environment", {}).get("variables", {}))
        env["BATCH_TASK_INDEX"] = str(index)
        env["BATCH_TASK_COUNT"] = str(task_count(group))
        env["BATCH_TASK_RETRY_ATTEMPT"] = str(attempt)
        env.setdefault(
            "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        )
        return env

    def mounts(self, spec: dict) -> list[tuple[str, str]]:
        sim = self.sim_snapshot() or {}
        out = []
        for vol in spec.get("volumes", []):
            remote = vol["gcs"]["remotePath"].strip("/")
            bucket, _, sub = remote.partition("/")
            bdir = os.path.join(sim.get("bucketsDir", buckets_dir()), bucket)
            if not os.path.isdir(bdir):
                raise TaskSetupError(
                    f"GCS bucket {bucket!r} does not exist (simulated by directory "
                    f"{bdir})"
                )
            src = os.path.join(bdir, sub) if sub else bdir
            os.makedirs(src, exist_ok=True)
            out.append((src, os.path.normpath(vol["mountPath"])))
        return sorted(out, key=lambda m: m[1].count("/"))

    def mount_mode(self) -> str:
        mode = self.sett["mount_mode"]
        if mode == "auto":
            if not hasattr(self, "_auto_mode"):
                # Root alone is not enough (no CAP_SYS_ADMIN in some
                # containers): probe once.
                ok = False
                if os.geteuid() == 0 and shutil.which("unshare"):
                    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                        ok = (
                            subprocess.run(
                                [
                                    "unshare",
                                    "--mount",
                                    "--propagation",
                                    "private",
                                    "true",
                                ],
                                capture_output=True,
                                timeout=10,
                            ).returncode
                            == 0
                        )
                self._auto_mode = "namespace" if ok else "symlink"
            mode = self._auto_mode
        return mode

    def run_attempt(self, index: int, attempt: int, spec: dict, group: dict):
        deadline = None
        if spec.get("maxRunDuration"):
            deadline = time.monotonic() + parse_duration(spec["maxRunDuration"])
        task_dir = os.path.join(self.jdir, "tasks", str(index))
        os.makedirs(task_dir, exist_ok=True)
        log_path = os.path.join(self.jdir, "logs", f"task-{index}.log")
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        try:
            mounts = self.mounts(spec)
        except (TaskSetupError, OSError) as e:
            with open(log_path, "a") as log:
                log.write(f"[gcloud batch simulator] task setup failed: {e}\n")
            return (EXIT_GENERIC, "setup")
        mode = self.mount_mode()
        if mode == "symlink":
            try:
                ensure_symlinks(mounts)
            except TaskSetupError as e:
                with open(log_path, "a") as log:
                    log.write(f"[gcloud batch simulator] task setup failed: {e}\n")
                return (EXIT_GENERIC, "setup")
        failed = None
        background = []
        timed_out = False
        with open(log_path, "ab") as log:
            log.write(
                f"[gcloud batch simulator] task {index} attempt {attempt}\n".encode()
            )
            log.flush()
            for r, runnable in enumerate(spec["runnables"]):
                if failed is not None and not runnable.get("alwaysRun"):
                    continue
                if "barrier" in runnable:
                    if self.barrier is not None and failed is None:
                        try:
                            left = (
                                None
                                if deadline is None
                                else max(0.0, deadline - time.monotonic())
                            )
                            self.barrier.wait(timeout=left)
                        except threading.BrokenBarrierError:
                            failed = failed if failed is not None else 1
                    continue
                timeout = None
                if runnable.get("timeout"):
                    timeout = parse_duration(runnable["timeout"])
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    timed_out = True
                    break
                key = f"{index}-{attempt}-{r}"
                script_file = None
                if "text" in runnable["script"]:
                    script_file = os.path.join(task_dir, f"runnable-{r}.sh")
                    with open(script_file, "w") as fh:
                        fh.write(runnable["script"]["text"])
                    os.chmod(script_file, 0o755)
                exec_spec = {
                    "mounts": mounts if mode == "namespace" else [],
                    "script": script_file or runnable["script"]["path"],
                    "env": self.task_env(index, attempt, spec, group, runnable),
                    "cwd": task_dir,
                }
                spec_path = os.path.join(task_dir, f"exec-{attempt}-{r}.json")
                atomic_write_json(spec_path, exec_spec)
                argv = [sys.executable, SELF, "__sim-exec", spec_path]
                if mode == "namespace" and mounts:
                    unshare = ["unshare", "--mount", "--propagation", "private"]
                    argv = [*unshare, "--", *argv]
                proc = self.start(key, argv, log, task_dir)
                if proc is None:  # deleted meanwhile
                    return (None, "aborted")
                if runnable.get("background"):
                    background.append((key, proc))
                    continue
                limits = [t for t in (timeout, left) if t is not None]
                rc = self.wait_proc(key, proc, min(limits) if limits else None)
                if rc is None:  # timeout
                    if left is not None and (timeout is None or left <= timeout):
                        timed_out = True
                        break
                    rc = EXIT_MAX_RUNTIME
                if self.deleted.is_set() or self.shutdown.is_set():
                    break
                if rc != 0 and not runnable.get("ignoreExitStatus") and failed is None:
                    failed = rc
            for key, proc in background:
                self.stop_proc(key, proc)
        self.copy_logs_to_path(log_path, mounts)
        if timed_out:
            return (EXIT_MAX_RUNTIME, "max_run_duration")
        return (failed if failed is not None else 0, None)

    def copy_logs_to_path(self, log_path: str, mounts) -> None:
        logs = self.job.get("logsPolicy", {})
        if logs.get("destination") != "PATH":
            return
        target = os.path.normpath(logs["logsPath"])
        for src, mp in sorted(mounts, key=lambda m: -len(m[1])):
            if target == mp or target.startswith(mp + "/"):
                host = os.path.join(src, os.path.relpath(target, mp))
                try:
                    os.makedirs(os.path.dirname(host), exist_ok=True)
                    with open(log_path, "rb") as fin, open(host, "ab") as fout:
                        shutil.copyfileobj(fin, fout)
                except OSError:
                    pass
                return

    def start(self, key: str, argv: list[str], log, cwd: str):
        try:
            with self.locked() as box:
                if self.deleted.is_set() or self.shutdown.is_set():
                    return None
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                    cwd=cwd,
                )
                self.procs[key] = proc
                box["sim"]["pgids"][key] = [proc.pid, proc_starttime(proc.pid)]
                box["dirty"] = True
                return proc
        except JobGone:
            self.gone = True
            self.deleted.set()
            return None

    def wait_proc(self, key: str, proc: subprocess.Popen, timeout: float | None):
        """Wait for the runnable; kill its group when it exits. None on timeout."""
        exited = wait_exit(proc.pid, timeout)
        if not exited:
            self.stop_proc(key, proc)
            return None
        # The leader is a zombie now (not reaped): its pgid cannot be reused,
        # so it is safe to kill whatever it left behind in its group.
        killpg_quiet(proc.pid, signal.SIGKILL)
        rc = proc.wait()
        self.forget(key)
        return exit_code_of(rc)

    def stop_proc(self, key: str, proc: subprocess.Popen) -> None:
        killpg_quiet(proc.pid, signal.SIGTERM)
        if not wait_exit(proc.pid, self.sett["kill_grace"]):
            killpg_quiet(proc.pid, signal.SIGKILL)
            wait_exit(proc.pid, 5.0)
        killpg_quiet(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5.0)
        self.forget(key)

    def forget(self, key: str) -> None:
        self.procs.pop(key, None)
        self.update(lambda job, sim: sim["pgids"].pop(key, None) and None)

    def kill_all(self) -> None:
        procs = list(self.procs.items())
        for _, proc in procs:
            killpg_quiet(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.sett["kill_grace"]
        for _, proc in procs:
            if not wait_exit(proc.pid, max(0.0, deadline - time.monotonic())):
                killpg_quiet(proc.pid, signal.SIGKILL)
        for key, proc in procs:
            killpg_quiet(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5.0)
            self.procs.pop(key, None)
        if procs and not self.gone:
            self.update(lambda job, sim: sim.__setitem__("pgids", {}))


class TaskSetupError(Exception):
    pass


def wait_exit(pid: int, timeout: float | None) -> bool:
    """Wait until `pid` (our child) has exited, without reaping it."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        try:
            ready, _, _ = select.select([fd], [], [], timeout)
            return bool(ready)
        finally:
            os.close(fd)
    # Fallback without pidfd: poll waitid(WNOWAIT) with sleeps.
    end = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            res = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        if res is not None:
            return True
        if end is not None and time.monotonic() >= end:
            return False
        time.sleep(0.05)


def ensure_symlinks(mounts) -> None:
    for src, mp in mounts:
        if os.path.islink(mp):
            if os.path.realpath(mp) == os.path.realpath(src):
                continue
            raise TaskSetupError(
                f"symlink mode: {mp} already points to {os.readlink(mp)}, not {src} "
                "(another job uses the same mountPath for another bucket)"
            )
        if os.path.exists(mp):
            if os.path.isdir(mp) and not os.listdir(mp):
                os.rmdir(mp)
            else:
                raise TaskSetupError(
                    f"symlink mode: mountPath {mp} exists and is not our symlink"
                )
        os.makedirs(os.path.dirname(mp), exist_ok=True)
        try:
            os.symlink(src, mp)
        except FileExistsError:
            if os.path.realpath(mp) != os.path.realpath(src):
                raise TaskSetupError(
                    f"symlink mode: {mp} was created concurrently for another bucket"
                ) from None


def exec_runnable(spec_path: str) -> None:
    """Inside the (optional) private mount namespace: mount, then exec the script."""
    spec = read_json(spec_path)
    for src, dst in spec["mounts"]:
        os.makedirs(dst, exist_ok=True)
        res = subprocess.run(
            ["mount", "--bind", src, dst], capture_output=True, text=True
        )
        if res.returncode != 0:
            sys.stderr.write(
                f"[gcloud batch simulator] cannot bind-mount {src} on {dst}: "
                f"{res.stderr.strip()}\n"
            )
            os._exit(1)
    script = spec["script"]
    try:
        with open(script, "rb") as fh:
            shebang = fh.read(2) == b"#!"
    except OSError as e:
        sys.stderr.write(
            f"[gcloud batch simulator] cannot read script {script}: {e.strerror}\n"
        )
        os._exit(127)
    argv = [script] if shebang and os.access(script, os.X_OK) else ["/bin/sh", script]
    os.chdir(spec["cwd"])
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(argv[0], argv, spec["env"])
    except OSError as e:
        sys.stderr.write(
            f"[gcloud batch simulator] cannot execute {argv[0]}: {e.strerror}\n"
        )
        os._exit(126)
