"""A Job whose folder is in cloud storage (a cloudpathlib path, e.g. gs://...).

``Job`` reads and writes its files through the path object (``read_text``,
``write_text``), which works for cloud paths too; but clearing, archiving and
appending use ``os``/``shutil``/``open``, which would act on cloudpathlib's local
cache copy and never reach the bucket. This subclass does those with the cloud
path's own methods. Object stores have no append: ``append_stderr`` rewrites
the (small) file.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ..job import _FILES, Job

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

    def _clear_outputs(self) -> None:
        for name in _FILES:
            with contextlib.suppress(FileNotFoundError):
                (self.metadir / name).unlink(missing_ok=True)

    def archive_trial(self) -> None:
        """Move this trial's files to job.retry/<trial>/ (copy + delete on GCS)."""
        self.trial_count += 1
        dest: Any = self.retry_dir / str(self.trial_count)
        if dest.exists():
            dest.rmtree()
        for name in _FILES:
            src: Any = self.metadir / name
            if src.exists():
                src.rename(dest / name)

    def append_stderr(self, text: str) -> None:
        with contextlib.suppress(OSError):
            path: Any = self.stderr_file
            try:
                old = path.read_text()
            except FileNotFoundError:
                old = ""
            path.write_text(old + text)
