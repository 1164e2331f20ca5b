"""Job arrays, as ``sbatch --array``: one command, many indexes.

    xqute submit --array 1-1000 -- python task.py        # $XQUTE_ARRAY_INDEX
    xqute submit --array 0-99:10,200 -- ./step.sh         # 0 10 20 ... 90 200
    xqute submit --array 1-1000%10 -- ./download.sh       # at most 10 at once

Each index is a queue job of its own (``<name>[<index>]``), all submitted in
one transaction, seeing its index in ``$XQUTE_ARRAY_INDEX``. With ``%N`` at
most N of them are pending or running at once: the others are ``held``
(reason "array throttle: ...") and the pools release them in index order as
the array's jobs end (``ArrayThrottle``, a step every pool runs). An array's
jobs know it by ``metadata.xqute_array``: [first id, last id, N].
"""

from __future__ import annotations

import json
import sqlite3

from ..checks import digits
from ..errors import ConfigError
from .exports import PreparedEnv, env_json

TYPE_CHECKING = False  # typing is not imported at run time (xqute submit)
if TYPE_CHECKING:
    from .db import Database

__all__ = ["ArrayThrottle", "array_jobs", "hold_beyond", "parse_array"]

MAX_TASKS = 1_000_000
THROTTLE_REASON = "array throttle: at most {n} of this array at once"
RELEASE_EVERY_S = 0.2  # while an array has held jobs


def parse_array(spec: str) -> tuple[list[int], int | None]:
    """(indexes, at most how many at once) of ``1-10``, ``1,3,5-7``,
    ``0-99:10`` (a step), each optionally followed by ``%N``."""
    text, pct, limit = spec.strip().partition("%")
    max_running = None
    if pct:
        if not digits(limit) or int(limit) < 1:
            raise ConfigError(f"--array {spec!r}: %N needs a positive integer N")
        max_running = int(limit)
    indexes: list[int] = []
    for part in text.split(","):
        rng, colon, step_text = part.strip().partition(":")
        lo, dash, hi = rng.partition("-")
        try:
            first, last = int(lo), int(hi) if dash else int(lo)
            step = int(step_text) if colon else 1
        except ValueError:
            raise ConfigError(
                f"--array {spec!r}: {part!r} is not an index, a range (1-10) or a"
                " stepped range (0-99:10)"
            ) from None
        if first < 0 or last < first or step < 1:
            raise ConfigError(f"--array {spec!r}: {part!r} is an empty or bad range")
        # counted before it is made: 1-3000000000 must not take the memory first
        if len(indexes) + (last - first) // step + 1 > MAX_TASKS:
            raise ConfigError(f"--array {spec!r}: more than {MAX_TASKS:,} jobs")
        indexes.extend(range(first, last + 1, step))
    if len(set(indexes)) != len(indexes):
        raise ConfigError(f"--array {spec!r}: an index is given twice")
    return indexes, max_running


def array_jobs(
    command: object, array: str | list[int], args: dict[str, object]
) -> tuple[list[dict[str, object]], int | None]:
    """The ``submit_jobs`` items of an array (``args``: the ``submit_job``
    arguments they share) and its ``%N``."""
    if isinstance(array, str):
        indexes, most = parse_array(array)
    else:
        indexes, most = [int(i) for i in array], None
    args = dict(args)
    name = args.pop("job_name", None) or "array"
    base = env_json(args.pop("env", None), args.pop("export_env", None)) or "{}"
    rest = "}" if base == "{}" else ", " + base[1:]
    return [
        {
            **args,
            "command": command,
            "job_name": f"{name}[{i}]",
            # the shared env, serialised once, with the index in front
            "env": PreparedEnv(f'{{"XQUTE_ARRAY_INDEX": "{i}"{rest}'),
        }
        for i in indexes
    ], most


def hold_beyond(conn: sqlite3.Connection, ids: list[int], max_running: int) -> None:
    """In the submit's transaction: mark the array's jobs and hold all but the
    first ``max_running`` of them."""
    first, last = ids[0], ids[-1]
    mark = json.dumps([first, last, max_running])
    conn.execute(
        "UPDATE job_queue SET metadata = json_set(coalesce(metadata, '{}'),"
        " '$.xqute_array', json(?)) WHERE id BETWEEN ? AND ?",
        (mark, first, last),
    )
    conn.execute(
        "UPDATE job_queue SET state = 'held', reason = ? WHERE id BETWEEN ? AND ?",
        (THROTTLE_REASON.format(n=max_running), first + max_running, last),
    )


class ArrayThrottle:
    """Releases held array jobs while their array has room: a pool extension
    (``extensions.py``; not a subclass, so ``xqute submit`` does not import
    that module) that every pool runs. Each release is one transaction that
    counts and releases, so two pools never release too many."""

    name = "array-throttle"
    reconcile_interval_s = 1.0

    def jobs_ended(self, conn: sqlite3.Connection, ended: object, now: float) -> bool:
        return False

    def jobs_claimed(
        self, conn: sqlite3.Connection, claimed: object, now: float
    ) -> None:
        return None

    def reconcile(self, db: Database, now: float) -> float | None:
        arrays = db.query(
            "SELECT DISTINCT json_extract(metadata, '$.xqute_array') FROM job_queue"
            " WHERE state = 'held' AND reason LIKE 'array throttle:%'"
        )
        if not arrays:
            return None
        for (mark,) in arrays:
            first, last, most = json.loads(mark)
            db.write(lambda conn, a=first, b=last, n=most: _release(conn, a, b, n))
        return now + RELEASE_EVERY_S


def _release(conn: sqlite3.Connection, first: int, last: int, most: int) -> None:
    active = conn.execute(
        "SELECT count(*) FROM job_queue WHERE id BETWEEN ? AND ?"
        " AND state IN ('pending', 'waiting', 'running')",
        (first, last),
    ).fetchone()[0]
    if active < most:
        conn.execute(
            "UPDATE job_queue SET state = 'pending', reason = NULL WHERE id IN"
            " (SELECT id FROM job_queue WHERE id BETWEEN ? AND ? AND state = 'held'"
            " AND reason LIKE 'array throttle:%' ORDER BY id LIMIT ?)",
            (first, last, most - active),
        )
