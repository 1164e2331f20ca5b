"""``xqute run --joblog FILE``, ``--resume`` and ``--resume-failed``, in GNU
parallel's format, so that tools written for its job logs read ours::

    Seq  Host  Starttime  JobRuntime  Send  Receive  Exitval  Signal  Command
    1    :     1796384072.343      0.026  0  2  0  0  echo a

(tab-separated). ``Seq`` is the job's number (``{#}``: its index + 1), ``Host``
``:`` for this machine (else the backend's name), ``Receive`` the bytes of its
stdout, ``Exitval`` its exit code (-1 when it was killed by a signal, which
``Signal`` names: 15 for a timeout or a kill). One line per job, written when
it ends for good (after its retries), and flushed at once.

Without ``--resume``/``--resume-failed`` the log starts afresh. ``--resume``
skips the jobs the log has a line for (whatever their end); ``--resume-failed``
skips only those that succeeded and runs the others again; both append.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import IO

from ..errors import ConfigError
from ..job import Job
from ..status import JobOutcome

__all__ = ["HEADER", "JobLog", "read_joblog"]

HEADER = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"
_KILLS = (JobOutcome.KILLED, JobOutcome.TIMEOUT, JobOutcome.CANCELLED)


def read_joblog(path: str | os.PathLike[str]) -> dict[int, tuple[int, int]]:
    """{seq: (exitval, signal)} of the jobs a job log lists (the last line of
    a job wins: a resumed run appends). A missing file lists none."""
    try:
        text = Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        name = os.fspath(path)
        raise ConfigError(f"--joblog {name!r} cannot be read: {exc}") from exc
    done: dict[int, tuple[int, int]] = {}
    for line in text.splitlines()[1:]:
        fields = line.split("\t")
        try:
            done[int(fields[0])] = (int(fields[6]), int(fields[7]))
        except (IndexError, ValueError):
            continue  # a line cut short by a crash
    return done


def exit_and_signal(job: Job) -> tuple[int, int]:
    """(Exitval, Signal) as GNU parallel writes them."""
    rc = job.rc
    if job.outcome in _KILLS:
        if job.outcome is JobOutcome.TIMEOUT or rc is None or rc <= 128:
            return -1, 15
        return -1, rc - 128
    return (-1 if rc is None else rc), 0


class JobLog:
    """The job log of one run."""

    def __init__(self, path: str | os.PathLike[str], host: str, append: bool) -> None:
        self.path = Path(path)
        self.host = host
        fresh = not append or not self.path.exists() or self.path.stat().st_size == 0
        try:
            self._fh: IO[str] = open(  # noqa: SIM115 (open for the whole run)
                self.path, "w" if fresh else "a", encoding="utf-8", errors="replace"
            )
        except OSError as exc:
            raise ConfigError(
                f"--joblog {os.fspath(path)!r} cannot be written: {exc}"
            ) from exc
        if fresh:
            self._fh.write(HEADER)
            self._fh.flush()

    def write(self, job: Job) -> None:
        """The line of a job that ended for good."""
        started = job.started_at or job.submitted_at or time.time()
        runtime = (job.ended_at or time.time()) - started
        try:
            received = os.stat(job.stdout_file).st_size
        except (OSError, TypeError):
            received = 0
        exitval, sig = exit_and_signal(job)
        cmd = job.cmd if isinstance(job.cmd, str) else " ".join(job.cmd)
        cmd = cmd.replace("\n", " ")
        self._fh.write(
            f"{job.index + 1}\t{self.host}\t{started:.3f}\t{runtime:10.3f}\t0\t"
            f"{received}\t{exitval}\t{sig}\t{cmd}\n"
        )
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()
