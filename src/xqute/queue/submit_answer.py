"""What the daemon answers a request on its submit socket (``submit_server.py``
carries the bytes; the client and the wire format: ``submit_wire.py``).

The request is checked field by field (each problem named, with what is
allowed), then queued through the store exactly as a direct ``xqute submit``
queues it: the same rows, the same checks, the submitter's environment as the
client captured it, plus the request's token (``submit_tokens.py``). Bad input
is answered ``error 2``, a db failure ``error 1``, never raised: a client cannot
stop the daemon. A request for another db (``q.sqlite`` beside the served
``q.db`` shares its socket) is answered ``other-db``: the client then writes
its own db.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from ..errors import ConfigError, XquteError
from .exports import PreparedEnv
from .store import JobStore
from .submit_warn import waits_warning
from .submit_wire import JOB_KEYS, OTHER_DB, PROTOCOL
from .wake import notify

__all__ = ["answer", "db_identity"]

logger = logging.getLogger("xqute.queue")

_JOB_ARGS = {  # request "job" key -> submit_job argument
    "name": "job_name", "cpus": "cpus", "mem": "memory", "gpus": "gpus",
    "priority": "priority", "timeout": "timeout", "namespace": "namespace",
    "priority_class": "priority_class", "queue": "queue",
    "resource_class": "resource_class", "storage": "storage",
}  # fmt: skip


def db_identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of a db file, or None: it does not exist."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _problem(what: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"submit request: {what} {value!r:.200} is not {allowed}")


def _command(value: Any) -> str | list[str]:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    raise _problem("command", value, "a non-empty string or list of strings")


def _env(value: Any) -> PreparedEnv | None:
    if value is None:
        return None
    try:
        env = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        env = None
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise _problem("env", value, "null or a JSON object of strings")
    return PreparedEnv(value)


def _job(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _problem("job", value, "an object")
    out = {}
    for key, item in value.items():
        kind = JOB_KEYS.get(key)
        if kind is None:
            raise _problem("job key", key, f"one of {', '.join(JOB_KEYS)}")
        if item is None:
            continue
        if type(item) is not kind:
            raise _problem(f"job {key}", item, f"a {kind.__name__}")
        out[_JOB_ARGS[key]] = item
    return out


def _parse(data: bytes) -> dict[str, Any]:
    try:
        request = json.loads(data)
    except ValueError as exc:
        raise ConfigError(f"submit request: not JSON ({exc})") from None
    version = request.get("v") if isinstance(request, dict) else None
    if version != PROTOCOL:
        raise ConfigError(
            f"submit request: protocol {version!r} is not {PROTOCOL}"
            " (a client of another xqute version?)"
        )
    db = request.get("db")
    if not isinstance(db, str) or not os.path.isabs(db):
        raise _problem("db", db, "an absolute path")
    cwd = request.get("cwd")
    if not isinstance(cwd, str) or not os.path.isabs(cwd):
        raise _problem("cwd", cwd, "an absolute path")
    array = request.get("array")
    if array is not None and not isinstance(array, str):
        raise _problem("array", array, "null or a string such as 1-10%2")
    return {
        "db": db,
        "token": request.get("token"),  # checked by the store
        "command": _command(request.get("command")),
        "array": array,
        "shared": {
            "working_dir": cwd,
            "env": _env(request.get("env")),
            **_job(request.get("job", {})),
        },
    }


def answer(store: JobStore, data: bytes, served: tuple[int, int] | None) -> str:
    """Queue the request ``data`` through ``store``; the answer's text
    (``submit_wire.Answer``). ``served``: the identity of the db the store
    serves (``db_identity``). The pools are not woken: the caller does it once
    the client has its answer."""
    try:
        request = _parse(data)
        if served is None or db_identity(request["db"]) != served:
            return f"{OTHER_DB}\n"
        shared, token = request["shared"], request["token"]
        if request["array"] is not None:
            ids = store.submit_array(
                request["command"], request["array"], token=token, wake=False,
                **shared,
            )  # fmt: skip
        else:
            job = {"command": request["command"], **shared}
            ids = store.submit_jobs([job], token=token, wake=False)
    except ConfigError as exc:
        return f"error 2\n{exc}"
    except XquteError as exc:
        return f"error 1\n{exc}"
    except Exception as exc:  # a bug: the client is told, the daemon goes on
        logger.exception("submit socket: a request failed")
        return f"error 1\nthe daemon could not queue it: {type(exc).__name__}: {exc}"
    return f"ok {ids[0]} {ids[-1]}\n{_warning(store, shared, len(ids)) or ''}"


def _warning(store: JobStore, shared: dict[str, Any], count: int) -> str | None:
    """What a direct submit would warn (``submit_warn.py``): the pools are
    counted, not woken (``notify``'s count: 0 once this daemon's pool stopped)."""
    try:
        pools = notify(store.db.path, count_only=True)
        cpus, mem, gpus = (shared.get(k) for k in ("cpus", "memory", "gpus"))
        return waits_warning(store, cpus, mem, gpus, count, pools)
    except Exception:  # a warning is a courtesy: the jobs are queued
        logger.debug("submit socket: no warning computed", exc_info=True)
        return None
