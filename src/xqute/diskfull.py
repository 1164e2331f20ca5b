"""Telling "the disk is full" apart from other I/O errors, so that it is said.

A full filesystem under the workdir (or under the queue's db) must end the jobs
that cannot write with the reason ``disk full: ...``, never crash the driver or
the daemon with a raw ``OSError``. These helpers recognise it in an OSError
(ENOSPC, EDQUOT), in SQLite's "database or disk is full" (SQLITE_FULL), in
either as the cause of another error, and on a filesystem itself (statvfs).
"""

from __future__ import annotations

import errno
import os
from typing import Any

__all__ = ["disk_full_reason", "filesystem_full", "is_disk_full"]

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL = 13


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it) says the disk or quota is full."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
            return True
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None and code & 0xFF == _SQLITE_FULL:
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def disk_full_reason(exc: BaseException, what: str) -> str:
    """``disk full: <what>: <the system's words>``."""
    detail = getattr(exc, "strerror", None) or str(exc)
    return f"disk full: {what}: {detail}"


def filesystem_full(path: Any) -> str | None:
    """``disk full: ...`` if the filesystem holding ``path`` (a local path) has
    no block or no inode left for an unprivileged writer, else None."""
    try:
        st = os.statvfs(path)
    except (OSError, TypeError):
        return None
    if st.f_bavail == 0 or (st.f_files and st.f_favail == 0):
        return f"disk full: no space left on the filesystem of {path}"
    return None
