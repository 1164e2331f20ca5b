"""``JobStore``: the queue's store and its synchronous client API (submit, list,
status, cancel). ``SqliteJobScheduler`` is its older name (the same class).

Any process submits, lists and cancels jobs by writing to the db directly; no
daemon needs to be running. A worker pool (``pool.py``) claims pending jobs from
the same db. Nothing here needs an event loop, and importing it pulls in neither
the engine nor asyncio (the ``xqute submit`` command must start fast).

The files of the store, next to the db (``queue.db`` here)::

    <state dir>/queue.db  (+ -wal, -shm)   the jobs, workers, resource usage
    <state dir>/queue.jobs/<id>/           each job's folder: job.stdout, ...
    <state dir>/queue.lock, queue.pid      the daemon's lock and pid
    <state dir>/queue.log                  the daemon's log
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence

from ..checks import MAX_ID
from ..checks import positive_int as check_positive_int
from ..errors import ConfigError, JobNotFoundError
from .cancels import ACTIVE, cancel_in, chunks
from .db import Database, db_file
from .requests import (
    INSERT_SQL,
    job_id_of,
    name_filter,
    newest_first_index,
    parse_states,
)
from .schema import FINAL_STATES, HELD, PENDING, RUNNING, STATES, WAITING
from .submit_policy import submit_rows
from .submit_tokens import check_token, record, recorded
from .views import BRIEF, STATUS_KEYS, STATUS_SQL, brief_dict, full_dict
from .wake import notify

TYPE_CHECKING = False  # typing is not imported at run time (xqute submit)
if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path
    from typing import Any

__all__ = ["JobNotFoundError", "JobStore", "SqliteJobScheduler"]

#: the order of the active states in a listing (then each by priority and id)
ACTIVE_ORDER = (RUNNING, PENDING, WAITING, HELD)


class JobStore:
    """The job queue, stored in SQLite (``SqliteJobScheduler`` is the same class).

    Args:
        db_path: the db file; default ``$XQUTE_DB``, else the per-user state dir
            (``~/.local/state/xqute/queue.db`` on Linux).
        busy_timeout_s: how long a write may wait for another writer's lock
            before ``StoreError`` (retried with backoff meanwhile).

    The constructor does no I/O; the db (and its folder, user-only) is created on
    first use.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] | None = None,
        *,
        busy_timeout_s: float = 60.0,
    ) -> None:
        self.db = Database(db_file(db_path), busy_timeout_s)  # path: a str
        #: how many pools the last submit or cancel woke (0: none listens)
        self.pools_woken: int | None = None

    def __repr__(self) -> str:
        return f"<JobStore {self.db_path}>"

    # ------------------------------------------------------------------ files
    @property
    def db_path(self) -> Path:
        """The db file (a ``Path``, made when asked: ``xqute submit`` needs no
        pathlib, which costs it ~2 ms of imports)."""
        from pathlib import Path

        return Path(self.db.path)

    @property
    def state_dir(self) -> Path:
        return self.db_path.parent

    def sibling(self, suffix: str) -> Path:
        """A file of this store next to the db: ``queue.db`` -> ``queue<suffix>``."""
        return self.db_path.with_name(self.db_path.stem + suffix)

    @property
    def jobs_dir(self) -> Path:
        """Where pools put job folders by default (``<id>/`` under it)."""
        return self.sibling(".jobs")

    def close(self) -> None:
        """Close this process's connections (they reopen when used again)."""
        self.db.close()

    # ------------------------------------------------------------------ submit
    def submit_job(
        self,
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
        *,
        export_env: str | Sequence[str] | None = None,
        namespace: str = "default",
        priority_class: str | None = None,
        queue: str | None = None,
        resource_class: str | None = None,
        storage: str | int | None = None,
    ) -> int:
        """Queue one job; return its id.

        ``command``: a string runs as shell code, a list is an argv passed
        literally. ``memory``: MB or ``"512M"``/``"4G"``; ``timeout``: seconds or
        ``"90s"``/``"15m"``/``"1h"`` (the job is killed and recorded ``timeout``).
        Higher ``priority`` runs first; equal priorities run in submission order.
        ``env`` over ``export_env``: NONE (the pool's env), ALL (this process's,
        captured now, and only it, like sbatch) or names from it (exports.py).
        ``namespace``: whose quota it counts against; ``priority_class``,
        ``queue``, ``resource_class``: named in the resource policy, they give
        its priority, preemption rules and request (``submit_policy.py``);
        ``storage``: the disk it declares (MB or ``"10G"``), for quotas.
        """
        args = dict(locals())
        del args["self"]
        return self.submit_jobs([args])[0]

    def submit_jobs(
        self,
        jobs: Iterable[Mapping[str, Any]],
        *,
        max_running: int | None = None,
        token: str | None = None,
        wake: bool = True,
    ) -> list[int]:
        """Queue many jobs in one transaction (all or none); return their ids.

        Each item is a dict of ``submit_job`` arguments. ``max_running``: at
        most this many of them pending or running at once, in order (an
        array's ``%N``: the others are held, see ``array_jobs.py``).
        ``token``: a submit sent more than once queues its jobs once; a repeat
        returns the first one's ids (``submit_tokens.py``). ``wake=False``:
        the caller calls ``notify_pools()`` itself (the daemon answers its
        client first).
        """
        now = time.time()
        if token is not None:
            token = check_token(token)
            # sent before: what it queued (before any check: the policy may
            # have changed since, and the jobs are queued already)
            if (done := recorded(self.db.conn(), token)) is not None:
                return done
        rows = submit_rows(self.db, now, jobs)
        if not rows:
            return []

        def insert(conn: sqlite3.Connection) -> list[int]:
            if token is not None and (done := recorded(conn, token)) is not None:
                return done
            conn.executemany(INSERT_SQL, rows)
            last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
            # AUTOINCREMENT under the write lock: the batch's ids are consecutive
            ids = list(range(last - len(rows) + 1, last + 1))
            if max_running is not None and len(ids) > max_running:
                from .array_jobs import hold_beyond

                hold_beyond(conn, ids, max_running)
            if token is not None:
                record(conn, token, ids, now)
            return ids

        ids = self.db.write(insert)
        if wake:
            self.notify_pools()  # an idle pool starts them now, not at its next poll
        return ids

    def submit_array(
        self,
        command: str | Sequence[Any],
        array: str | Sequence[int],
        *,
        token: str | None = None,
        wake: bool = True,
        **submit_job_args: Any,
    ) -> list[int]:
        """One job per index, as ``sbatch --array`` (``array_jobs.py``):
        ``array`` is "1-1000", "1,3,5-7", "0-99:10", with "%N" for at most N
        at once, or a list of indexes. Each job sees its index in
        ``$XQUTE_ARRAY_INDEX`` and is named ``<job_name>[<index>]``."""
        from .array_jobs import array_jobs

        jobs, most = array_jobs(command, array, submit_job_args)
        return self.submit_jobs(jobs, max_running=most, token=token, wake=wake)

    # ------------------------------------------------------------------ read
    def get_job_status(self, job_id: int) -> dict[str, Any]:
        """Everything about one job: state, return_code, submitted/started/ended
        times, worker, pid, stdout/stderr paths, reason, the request ..."""
        job_id = job_id_of(job_id)
        rows = self.db.query(STATUS_SQL, (job_id,))
        if not rows:
            raise JobNotFoundError(f"no job {job_id} in the queue db {self.db_path}")
        data = full_dict(rows[0][: len(STATUS_KEYS)])
        data["max_rss_mb"], data["cpu_s"] = rows[0][len(STATUS_KEYS) :]
        return data

    def get_job_states(self, job_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """state, return_code and reason of many jobs in one query (for followers)."""
        out: dict[int, dict[str, Any]] = {}
        keys = ("state", "return_code", "reason", "started_at", "ended_at")
        for chunk, marks in chunks([job_id_of(i) for i in job_ids]):
            for row in self.db.query(
                f"SELECT id, {', '.join(keys)} FROM job_queue WHERE id IN ({marks})",
                chunk,
            ):
                out[row[0]] = dict(zip(keys, row[1:], strict=True))
        return out

    def list_jobs(
        self,
        state: str | Sequence[str] | None = None,
        name: str | None = None,
        limit: int | None = 100,
        namespace: str | None = None,
    ) -> list[dict[str, Any]]:
        """Jobs, like squeue.

        ``state``: one state or several (default: pending and running); "all"
        for every state. ``name``: a glob (``process_*``); ``namespace``: only
        that namespace's. Active jobs come in dispatch order (running, pending,
        waiting, held; each by priority, then id); a listing with finished ones
        comes newest first. ``limit`` caps the rows (None: no cap).
        """
        states = parse_states(state)
        if limit is not None:
            # a cap beyond SQLite's integers is no cap (`xqute queue` asks limit+1)
            limit = min(check_positive_int("limit", limit, 0, None), MAX_ID)
        index, by_name, params = name_filter(self.db, name)
        if namespace is not None:
            by_name = " AND ".join(c for c in (by_name, "namespace = ?") if c)
            params.append(namespace)
        if states is not None and not set(states) & FINAL_STATES:
            # one index range per state, in dispatch order: fast on huge queues
            rows: list[Any] = []
            for st in [s for s in ACTIVE_ORDER if s in states]:
                left = None if limit is None else limit - len(rows)
                if left is not None and left <= 0:
                    break
                rows += self.db.query(
                    f"SELECT {BRIEF} FROM job_queue {index} WHERE state = ?"
                    f"{' AND ' + by_name if by_name else ''}"
                    " ORDER BY priority DESC, id"
                    + (f" LIMIT {left}" if left is not None else ""),
                    [st, *params],
                )
        else:
            where = [by_name] if by_name else []
            if states is not None:
                where.insert(0, f"state IN ({','.join('?' * len(states))})")
                if not index and limit is not None:
                    index = newest_first_index(self.db, states)
                params[:0] = states
            clause = f"WHERE {' AND '.join(where)}" if where else ""
            rows = self.db.query(
                f"SELECT {BRIEF} FROM job_queue {index} {clause} ORDER BY id DESC"
                + (f" LIMIT {limit}" if limit is not None else ""),
                params,
            )
        keys = [k.strip() for k in BRIEF.split(",")]
        return [brief_dict(dict(zip(keys, row, strict=True))) for row in rows]

    def count_jobs(self) -> dict[str, int]:
        """How many jobs are in each state."""
        counts = dict.fromkeys(STATES, 0)
        for state, count in self.db.query(
            "SELECT state, count(*) FROM job_queue GROUP BY state"
        ):
            counts[state] = count
        return counts

    def list_workers(self, include_stopped: bool = True) -> list[dict[str, Any]]:
        """The worker pools that used this db (newest first), with heartbeats."""
        cols = (
            "id, host, pid, backend, max_workers, cpus, mem_mb, gpu_ids, state,"
            " started_at, heartbeat_at, running_jobs"
        )
        where = "" if include_stopped else "WHERE state IN ('running', 'stopping')"
        rows = self.db.query(
            f"SELECT {cols} FROM worker_nodes {where} ORDER BY started_at DESC"
        )
        keys = [k.strip() for k in cols.split(",")]
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def log_path(self, job_id: int, stream: str = "stdout") -> Path | None:
        """The path of a job's stdout or stderr, as recorded by the pool that ran it
        (None before it ran). Only these two files are ever served by ``logs``;
        ``get_job_status`` has both paths too."""
        if stream not in ("stdout", "stderr"):
            raise ConfigError.choice("log stream", stream, ["stdout", "stderr"])
        path = self.get_job_status(job_id)[stream]
        from pathlib import Path

        return Path(path) if path else None

    # ------------------------------------------------------------------ cancel
    def cancel_job(self, job_id: int) -> str:
        """Cancel a job; returns what happened:

        - "cancelled": it was pending; no pool will start it.
        - "cancelling": it is running; its pool kills its process tree within a
          second and records it cancelled.
        - "already completed", "already cancelled" ...: it had ended before
          (nothing done).
        """
        return self.cancel_jobs([job_id])[job_id_of(job_id)]

    def cancel_jobs(
        self,
        job_ids: Iterable[int] | None = None,
        *,
        name: str | None = None,
        all_jobs: bool = False,
    ) -> dict[int, str]:
        """Cancel jobs by id, by name glob, or every active job (``all_jobs``).

        Returns {id: outcome} as ``cancel_job`` does; an unknown id raises
        JobNotFoundError (and nothing is cancelled).
        """
        ids = [job_id_of(i) for i in job_ids] if job_ids is not None else None
        if ids is None and name is None and not all_jobs:
            raise ConfigError("give job ids, a name pattern, or all_jobs=True")
        given = ids is not None
        if ids is None and name is not None:
            # found before the write transaction, which then takes microseconds
            # (a job submitted meanwhile was submitted after the cancel)
            index, by_name, params = name_filter(self.db, name)
            ids = [
                row[0]
                for row in self.db.query(
                    f"SELECT id FROM job_queue {index} WHERE {by_name}"
                    f" AND state IN ({ACTIVE})",
                    params,
                )
            ]
        now = time.time()
        result = self.db.write(
            lambda conn: cancel_in(conn, now, ids, name, given, self.db.path)
        )
        self.notify_pools()  # a running job's pool kills it now
        return result

    def notify_pools(self) -> int:
        """Wake this db's pools now; return how many listen (see ``wake.py``:
        call it after changing the queue with your own SQL)."""
        self.pools_woken = notify(self.db.path)
        return self.pools_woken


#: the seed's public name of the store (it is no scheduler: it stores jobs)
SqliteJobScheduler = JobStore
