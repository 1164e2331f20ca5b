"""Constants, settings from the environment and small helpers."""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from datetime import UTC, datetime

from .errors import CliError

SIM_VERSION = "0.1.0"
# The executable the runner is started with (tests/tools/gcloud/gcloud).
SELF = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gcloud"
)

STATES = (
    "STATE_UNSPECIFIED",
    "QUEUED",
    "SCHEDULED",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "DELETION_IN_PROGRESS",
)
TASK_STATES = (
    "STATE_UNSPECIFIED",
    "PENDING",
    "ASSIGNED",
    "RUNNING",
    "FAILED",
    "SUCCEEDED",
    "UNEXECUTED",
)
FINAL_STATES = ("SUCCEEDED", "FAILED")
# Batch reserved exit code: "task runs over the maximum runtime".
EXIT_MAX_RUNTIME = 50005
# Batch's exit code for task failures without a more specific code; used by
# the simulator for task setup errors (missing bucket directory, ...).
EXIT_GENERIC = 50000

JOB_ID_RE = re.compile(r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")
LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
DURATION_RE = re.compile(r"^(-)?(\d+)(?:\.(\d{1,9}))?s$")
SAFE_SEGMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

HTTP_CODES = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "UNIMPLEMENTED": 501,
}

# Environment variables of the submitting process passed to tasks by default.
DEFAULT_PASS_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    "USER",
    "LOGNAME",
    "SHELL",
    "TMPDIR",
)


# --------------------------------------------------------------------------- #
# Settings (environment)
# --------------------------------------------------------------------------- #
def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    if raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise CliError(
            f"[gcloud batch simulator] {name} must be a number, got {raw!r}"
        ) from None
    if value < 0:
        raise CliError(f"[gcloud batch simulator] {name} must be >= 0, got {raw!r}")
    return value


def state_dir() -> str:
    return os.path.abspath(
        os.environ.get("GBATCH_SIM_DIR") or f"/tmp/gbatch-sim-{os.getuid()}"
    )


def buckets_dir() -> str:
    return os.path.abspath(
        os.environ.get("GBATCH_SIM_BUCKETS_DIR") or os.path.join(state_dir(), "buckets")
    )


def settings() -> dict:
    mount_mode = os.environ.get("GBATCH_SIM_MOUNT_MODE", "auto").strip() or "auto"
    if mount_mode not in ("auto", "namespace", "symlink"):
        raise CliError(
            "[gcloud batch simulator] GBATCH_SIM_MOUNT_MODE must be one of "
            f"auto, namespace, symlink; got {mount_mode!r}"
        )
    return {
        "queue_delay": _env_float("GBATCH_SIM_QUEUE_DELAY_S", 0.5),
        "schedule_delay": _env_float("GBATCH_SIM_SCHEDULE_DELAY_S", 0.5),
        "delete_delay": _env_float("GBATCH_SIM_DELETE_DELAY_S", 1.0),
        "kill_grace": _env_float("GBATCH_SIM_KILL_GRACE_S", 2.0),
        "mount_mode": mount_mode,
        "pass_env": os.environ.get("GBATCH_SIM_PASS_ENV", ""),
    }


# --------------------------------------------------------------------------- #
# Small helpers
# --------------------------------------------------------------------------- #
def rfc3339(t: float | None = None) -> str:
    dt = datetime.fromtimestamp(time.time() if t is None else t, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}Z"


def fmt_duration(seconds: float) -> str:
    if seconds <= 0:
        return "0s"
    return f"{seconds:.6f}s"


def parse_duration(text: str) -> float | None:
    m = DURATION_RE.match(text)
    if not m:
        return None
    value = int(m.group(2)) + (float("0." + m.group(3)) if m.group(3) else 0.0)
    return -value if m.group(1) else value


def camel_to_snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def atomic_write_json(path: str, obj) -> None:
    tmp = f"{path}.tmp.{os.getpid()}.{threading.get_ident()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def read_json(path: str):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive for our purposes.
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return False


def proc_starttime(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def proc_cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [p.decode("utf-8", "replace") for p in fh.read().split(b"\0") if p]
    except OSError:
        return []


def is_our_runner(pid: int | None, uid: str) -> bool:
    if not pid_alive(pid):
        return False
    cmd = proc_cmdline(pid)
    return "__sim-runner" in cmd and uid in cmd


def killpg_quiet(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def exit_code_of(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def log_call(argv: list[str], exit_code: int, started: float) -> None:
    """Append one line per CLI invocation to $GBATCH_SIM_DIR/calls.jsonl."""
    try:
        os.makedirs(state_dir(), exist_ok=True)
        line = json.dumps(
            {"argv": argv, "exitCode": exit_code, "start": started, "end": time.time()}
        )
        fd = os.open(
            os.path.join(state_dir(), "calls.jsonl"),
            os.O_WRONLY | os.O_APPEND | os.O_CREAT,
            0o644,
        )
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
    except OSError:
        pass
