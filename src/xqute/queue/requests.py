"""Validation of what callers ask the store for: a job to submit (turned into a
``job_queue`` row), job ids, states, name globs.

Kept free of the engine (no asyncio, no Job) so that ``xqute submit`` stays a
fast one-shot command. The rules match the engine's ``feed``: a string is shell
code, a list is an argv passed literally; env names are identifiers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

from .. import checks
from ..errors import ConfigError
from .exports import env_json
from .jsontext import dumps
from .schema import PENDING, RUNNING, STATES

TYPE_CHECKING = False  # typing is not imported at run time (xqute submit)
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "SUBMIT_FIELDS",
    "check_name",
    "job_id_of",
    "job_row",
    "name_filter",
    "newest_first_index",
    "parse_states",
    "submit_args",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
#: a name glob that at most this many names match is looked up in the name index
NAME_PROBE = 2000
#: states that at least this many jobs are in are listed from the newest rows
STATE_PROBE = 5000

_ALIASES = {"name": "job_name", "cwd": "working_dir", "mem": "memory"}
INSERT_SQL = (
    "INSERT INTO job_queue (name, command, working_dir, env, metadata, cpus,"
    " mem_mb, gpus, priority, timeout_s, submitted_at, namespace, priority_class,"
    " storage_mb) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: submit arguments resolved from the resource policy before ``job_row``
#: (``submit_policy.resolve``)
POLICY_FIELDS = ("queue", "resource_class")


def _command_json(command: Any) -> str:
    """A command as stored: a string (shell code) or a list (an argv)."""
    cmd = checks.command(command)
    return dumps(cmd if isinstance(cmd, str) else list(cmd))


def _int(name: str, value: Any, minimum: int | None) -> int:
    """An integer argument; a string of digits (from a CLI or a file) is one.
    Within SQLite's 64 bits (a larger one is bad input, not an OverflowError)."""
    if isinstance(value, str) and checks.digits(value.strip().lstrip("+-")):
        value = int(value)
    if minimum is not None:
        number = checks.positive_int(name, value, minimum, None)  # bound below
    else:
        number = checks.integer(name, value)
    if not -checks.MAX_ID - 1 <= number <= checks.MAX_ID:  # SQLite's INTEGER
        raise ConfigError(f"{name} {value!r} is out of range (at most {checks.MAX_ID})")
    return number


def _text(name: str, value: str) -> str:
    """A string the db stores as text: UTF-8 (a name or folder that is not,
    from a non-UTF-8 argv or file system, is refused by name)."""
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ConfigError(
            f"{name} {value!r} is not UTF-8 text; the queue stores text"
        ) from None
    if "\x00" in value:  # (no folder can have one; a name shows cut at it)
        raise ConfigError(f"{name} {value!r} must be text without NUL")
    return value


def job_row(
    now: float,
    *,
    command: str | Sequence[Any],
    working_dir: str | os.PathLike[str] | None = None,
    job_name: str | None = None,
    cpus: int | None = None,
    memory: str | int | None = None,
    gpus: int | None = None,
    priority: int | None = None,
    timeout: str | float | None = None,
    env: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    export_env: str | Sequence[str] | None = None,
    namespace: str = "default",
    priority_class: str | None = None,
    storage: str | int | None = None,
) -> tuple[Any, ...]:
    """The INSERT parameters of one job (``INSERT_SQL``); raises ConfigError.
    (cpus, gpus, priority: None means the default, 1, 0, 0.)"""
    if job_name is not None and not isinstance(job_name, str):
        raise ConfigError(f"job_name {job_name!r} must be a string")
    if job_name:
        _text("job_name", job_name)
    if working_dir is not None:
        if not isinstance(working_dir, str | os.PathLike):
            raise ConfigError(f"working_dir {working_dir!r} must be a folder's path")
        working_dir = _text("working_dir", os.path.abspath(os.fspath(working_dir)))
    mem_mb = _mem_mb(memory, "memory")
    timeout_s = None if timeout in (None, "") else _seconds(timeout, "timeout")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise ConfigError(f"metadata {metadata!r} must be a dict")
    try:
        meta = dumps(dict(metadata)) if metadata else None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"metadata {metadata!r} is not JSON-serialisable") from exc
    return (
        job_name or "",
        _command_json(command),
        working_dir,
        env_json(env, export_env),
        meta,
        _int("cpus", 1 if cpus is None else cpus, 1),
        mem_mb,
        _int("gpus", gpus or 0, 0),
        _int("priority", priority or 0, None),
        timeout_s,
        now,
        check_name("namespace", namespace),
        None
        if priority_class is None
        else check_name("priority_class", priority_class),
        _mem_mb(storage, "storage"),
    )


def _mem_mb(value: str | int | None, what: str) -> int:
    """MB of a memory or storage request; 0 for none. (``units`` is imported
    only when one is given: its regexes cost ``xqute submit`` ~0.5 ms.)"""
    if value in (None, ""):
        return 0
    from ..units import parse_mem_mb

    return _int(what, parse_mem_mb(value, what), 0)  # type: ignore[arg-type]


def _seconds(value: str | float, what: str) -> float:
    from ..units import parse_duration_s

    return parse_duration_s(value, what)


def check_name(what: str, value: Any) -> str:
    """A definition or namespace name: letters, digits, ``_.-``."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise ConfigError(
            f"{what} {value!r} is not a valid name; use letters, digits and _ . -"
            " (starting with a letter or digit, at most 128)"
        )
    return value


def _class_name(name: str | None) -> str | None:
    return None if name is None else check_name("priority_class", name)


#: the arguments of ``submit_job`` (``job_row``'s, after ``now``, and the ones
#: the resource policy resolves)
SUBMIT_FIELDS: tuple[str, ...] = (
    *job_row.__code__.co_varnames[1 : 1 + job_row.__code__.co_kwonlyargcount],
    *POLICY_FIELDS,
)


def submit_args(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A dict of ``submit_job`` arguments (``submit_jobs``), aliases resolved;
    unknown keys are rejected."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"job {spec!r} must be a dict of submit_job arguments")
    kwargs = {}
    for key, value in spec.items():
        name = _ALIASES.get(key, key)
        if name not in SUBMIT_FIELDS:
            raise ConfigError.choice("submit_job argument", key, SUBMIT_FIELDS)
        kwargs[name] = value
    if "command" not in kwargs:
        raise ConfigError(f"job {dict(spec)!r} has no command")
    return kwargs


def job_id_of(value: Any) -> int:
    """A job id: a positive integer (or its digits)."""
    return checks.row_id("job id", value)


def parse_states(state: str | Sequence[str] | None) -> list[str] | None:
    """States to list: one, several, or "a,b"; None (the default) means pending
    and running; "all" (returned as None) every state."""
    if state is None:
        return [PENDING, RUNNING]
    items = [state] if isinstance(state, str) else list(state)
    items = [s.strip().lower() for item in items for s in item.split(",") if s.strip()]
    for item in items:
        if item not in STATES and item != "all":
            raise ConfigError.choice("state", item, [*STATES, "all"])
    return None if "all" in items else items


def name_filter(db: Any, name: str | None) -> tuple[str, str, list[str]]:
    """How to select jobs by a name glob: (index clause, condition, params).

    Without statistics SQLite cannot tell a glob that a few names match from one
    that matches every job, and either plan is slow for the other kind on a big
    queue. So this counts in the name index up to ``NAME_PROBE`` matches of a
    glob with a literal prefix: below that, the rows are looked up there
    (``INDEXED BY``); otherwise (or with no literal prefix) the glob filters the
    rows the state index or the table yields, in their order, which meets the
    first matches early. ``db``: the store's ``Database``.
    """
    if not name:
        return "", "", []
    if glob_prefix(name):
        probe = db.query(
            "SELECT count(*) FROM (SELECT 1 FROM job_queue INDEXED BY"
            " job_queue_name WHERE name GLOB ? LIMIT ?)",
            (name, NAME_PROBE),
        )
        if probe[0][0] < NAME_PROBE:
            return "INDEXED BY job_queue_name", "name GLOB ?", [name]
    return "", "+name GLOB ?", [name]


def glob_prefix(pattern: str) -> str:
    """The literal start of a GLOB pattern (what a name index range can use)."""
    for i, char in enumerate(pattern):
        if char in "*?[":
            return pattern[:i]
    return pattern


def newest_first_index(db: Any, states: Sequence[str]) -> str:
    """How to list jobs in ``states`` newest first (``ORDER BY id DESC``): the
    index clause.

    The state index holds a state's jobs by priority, not by id: listing the
    newest 100 of 800,000 completed jobs from it sorts all of them (~0.8 s).
    So this counts in it up to ``STATE_PROBE`` jobs of those states: fewer,
    and they are looked up there and sorted (a few ms); more, and the table
    is read from its newest row backwards (``NOT INDEXED``), which meets 100
    of them after a few thousand rows unless they are all old.
    """
    marks = ",".join("?" * len(states))
    probe = db.query(
        "SELECT count(*) FROM (SELECT 1 FROM job_queue INDEXED BY job_queue_state"
        f" WHERE state IN ({marks}) LIMIT ?)",
        [*states, STATE_PROBE],
    )
    return "NOT INDEXED" if probe[0][0] >= STATE_PROBE else ""
