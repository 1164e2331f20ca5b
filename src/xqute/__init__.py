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

The engine, the job model and the plugin manager are imported on first use
(PEP 562 ``__getattr__``), so that ``import xqute.queue`` and a one-shot
``xqute submit`` do not pay for asyncio, simplug and the engine (~60 ms).
"""

from __future__ import annotations

from .errors import (
    BackendError,
    CommandFailed,
    ConfigError,
    Interrupted,
    PluginError,
    ServiceError,
    StoreError,
    SubmitError,
    WorkdirBusy,
    WorkflowError,
    XquteError,
)

TYPE_CHECKING = False  # typing is not imported at run time (xqute submit)

if TYPE_CHECKING:
    from typing import Any

    from .engine import Xqute
    from .hooks import plugin, simplug
    from .job import Job
    from .resources import Resources
    from .schedulers import Scheduler
    from .status import JobErrorStrategy, JobOutcome, JobStatus

__version__ = "2.3.0"


# public name -> the submodule that defines it (imported on first access)
_LAZY = {
    "Job": ".job",
    "Resources": ".resources",
    "Scheduler": ".schedulers",
    "JobErrorStrategy": ".status",
    "JobOutcome": ".status",
    "JobStatus": ".status",
    "Xqute": ".engine",
    # the plugin manager (``plugin`` is its older name); the hook specs and the
    # per-engine dispatcher are in ``xqute.hooks``
    "plugin": ".hooks",
    "simplug": ".hooks",
}


def __getattr__(name: str) -> Any:
    if name == "logger":  # (logging is not imported before it is needed)
        from ._log import logger

        return logger
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'xqute' has no attribute {name!r}")
    from importlib import import_module  # (not at import: xqute submit)

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
    "ServiceError",
    "StoreError",
    "SubmitError",
    "WorkdirBusy",
    "WorkflowError",
    "Xqute",
    "XquteError",
    "__version__",
    "logger",
    "plugin",
    "simplug",
]
