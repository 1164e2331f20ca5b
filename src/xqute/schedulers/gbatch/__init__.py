"""The Google Cloud Batch backend (``scheduler="gbatch"``): one Batch job per
xqute job, through gcloud, with a ``gs://`` workdir.

- ``scheduler.py`` — ``GbatchScheduler``: submit, one ``list`` per poll cycle,
  delete;
- ``config.py`` — the Batch job config builder and the ``jobs list`` parser, as
  pure functions;
- ``cloudjob.py`` — ``CloudJob``: a Job whose folder is in cloud storage.
"""

from __future__ import annotations

from .scheduler import GBATCH_OPTIONS, GbatchScheduler

__all__ = ["GBATCH_OPTIONS", "GbatchScheduler"]
