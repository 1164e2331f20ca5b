"""A Job whose folder is in cloud storage (a cloudpathlib path, e.g. gs://...).

``Job`` works on its files through path methods (``read_text``, ``unlink``,
``rename``), which cloud paths have too; only appending (``open``) would act on
cloudpathlib's local cache copy and never reach the bucket. This subclass appends
with the cloud path's methods: object stores have no append, so
``append_stderr`` rewrites the (small) file.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ...job import Job

__all__ = ["CloudJob"]


class CloudJob(Job):
    """A Job with a cloud metadir (``workdir`` is a cloudpathlib CloudPath)."""

    __slots__ = ()

    def append_stderr(self, text: str) -> None:
        with contextlib.suppress(OSError):
            path: Any = self.stderr_file
            try:
                old = path.read_text()
            except FileNotFoundError:
                old = ""
            path.write_text(old + text)
