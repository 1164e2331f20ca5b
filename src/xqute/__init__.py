"""xqute: a job management system for Python.

Run thousands of shell jobs under a concurrency limit, with retries, timeouts and
plugin hooks, on this machine or on a cluster backend::

    import asyncio
    from xqute import Xqute

    async def main():
        xqute = Xqute(forks=4)
        await xqute.feed(["echo", "Hello"])
        await xqute.run_until_complete()

    asyncio.run(main())
"""

import logging

from .errors import (
    BackendError,
    CommandFailed,
    ConfigError,
    Interrupted,
    PluginError,
    StoreError,
    SubmitError,
    WorkflowError,
    XquteError,
)
from .job import Job
from .plugin import plugin, simplug
from .resources import Resources
from .schedulers import Scheduler
from .status import JobErrorStrategy, JobOutcome, JobStatus
from .xqute import Xqute

__version__ = "0.1.0"

logger = logging.getLogger("xqute")
logger.addHandler(logging.NullHandler())

__all__ = [
    "BackendError",
    "CommandFailed",
    "ConfigError",
    "Interrupted",
    "Job",
    "JobErrorStrategy",
    "JobOutcome",
    "JobStatus",
    "PluginError",
    "Resources",
    "Scheduler",
    "StoreError",
    "SubmitError",
    "WorkflowError",
    "Xqute",
    "XquteError",
    "__version__",
    "logger",
    "plugin",
    "simplug",
]
