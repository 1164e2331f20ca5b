"""Defaults under xqute 2.x's names (``xqute.defaults``), for its clients.

pipen sets ``DEFAULT_WORKDIR_NAME = ".pipen"`` here; the container and gbatch
schedulers of the 2.x surface read it when they name the folder the workdir is
mounted at inside a job (``/mnt/disks/<DEFAULT_WORKDIR_NAME>``), so the change
counts, as it did in 2.x. The engine's own defaults are in ``Xqute``'s signature.
"""

from __future__ import annotations

import os

from .status import JobErrorStrategy, JobStatus

__all__ = [
    "DEFAULT_CLOUD_FSPATH",
    "DEFAULT_ERROR_STRATEGY",
    "DEFAULT_NUM_RETRIES",
    "DEFAULT_SCHEDULER_FORKS",
    "DEFAULT_SUBMISSION_BATCH",
    "DEFAULT_WORKDIR_NAME",
    "JobErrorStrategy",
    "JobStatus",
]

#: the workdir's folder name (``./.xqute``), and its name where jobs mount it
DEFAULT_WORKDIR_NAME = ".xqute"
DEFAULT_ERROR_STRATEGY = JobErrorStrategy.IGNORE
DEFAULT_NUM_RETRIES = 3
DEFAULT_SCHEDULER_FORKS = 1
#: submissions in flight at once for schedulers of the 2.x surface
DEFAULT_SUBMISSION_BATCH = 8
#: where ``get_fspath()`` copies a cloud file to read it as a local one
DEFAULT_CLOUD_FSPATH = f"/tmp/xqute_cloud_cache_{os.getuid()}"
