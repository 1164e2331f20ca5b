"""A Job whose folder is in cloud storage (a cloudpathlib path, e.g. gs://...).

``Job`` works on its files through path methods (``read_text``, ``unlink``,
``rename``), which cloud paths have too; only preparing the folder (``os.scandir``)
and appending (``open``) would act on cloudpathlib's local cache copy and never
reach the bucket. This subclass does those two with the cloud path's methods.
Object stores have no append: ``append_stderr`` rewrites the (small) file.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ..job import Job

__all__ = ["CloudJob"]


class CloudJob(Job):
    """A Job with a cloud metadir (``workdir`` is a cloudpathlib CloudPath)."""

    __slots__ = ()

    def prepare_metadir(self) -> None:
        """Clear what an older run left (first trial) or this trial's outputs."""
        if self.trial_count > 0:
            self._clear_outputs()
            return
        md: Any = self.metadir
        if md.exists():
            for entry in md.iterdir():
                if entry.is_dir():
                    entry.rmtree()
                else:
                    entry.unlink(missing_ok=True)

    def append_stderr(self, text: str) -> None:
        with contextlib.suppress(OSError):
            path: Any = self.stderr_file
            try:
                old = path.read_text()
            except FileNotFoundError:
                old = ""
            path.write_text(old + text)
