"""One exception tree for everything xqute raises on purpose.

Catch ``XquteError`` to catch them all::

    XquteError
    ├── ConfigError (also a ValueError)   bad arguments, options, config files
    │   └── ConfigTypeError (+TypeError)   ... of the wrong type
    ├── SubmitError                       a job could not be handed to its backend
    ├── BackendError                      a backend misbehaved while running jobs
    │   ├── CommandFailed                 a backend command exited non-zero
    │   ├── ServerUnreachable             ssh could not reach a server
    │   └── LaunchFailed                  a server answered but did not start a job
    ├── PluginError                       a plugin's hook implementation raised
    ├── StoreError                        the queue service's database
    │   └── JobNotFoundError (+LookupError) no job of that id in the queue
    ├── ServiceError                      the queue daemon: start, reach, stop
    │   └── AlreadyRunningError           a daemon already serves this db
    ├── WorkflowError                     workflow definitions and runs
    │   ├── DefinitionError (+ConfigError) a definition is invalid: every problem
    │   ├── RenderError                    a #{...} reference cannot be resolved
    │   ├── DefinitionNotFoundError        no job/template/workflow of that name
    │   ├── RunNotFoundError               no run of that id
    │   └── ScheduleNotFoundError          no schedule of that name
    ├── WorkdirBusy                       another run holds the workdir's lock
    └── Interrupted                       the driver was stopped by a signal

Causes are chained with ``raise ... from exc`` so the original traceback is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "AlreadyRunningError",
    "BackendError",
    "CommandFailed",
    "ConfigError",
    "ConfigTypeError",
    "DbBusy",
    "DefinitionError",
    "DefinitionNotFoundError",
    "Interrupted",
    "JobNotFoundError",
    "LaunchFailed",
    "PluginError",
    "RenderError",
    "RunNotFoundError",
    "ScheduleNotFoundError",
    "ServerUnreachable",
    "ServiceError",
    "StoreError",
    "SubmitError",
    "WorkdirBusy",
    "WorkflowError",
    "XquteError",
]


class XquteError(Exception):
    """Root of every error xqute raises on purpose."""


class ConfigError(XquteError, ValueError):
    """Bad input: names the bad value and what is allowed."""

    #: the key of the bad value inside the mapping being checked, when known
    #: (a model field's validator sets it; the problem is then reported at
    #: ``field.key``, with that key's line in a YAML file)
    key: str | None = None

    @classmethod
    def choice(cls, what: str, value: object, allowed: Iterable[object]) -> ConfigError:
        """The common "X is not one of A, B, C" message."""
        choices = ", ".join(repr(a) for a in allowed)
        return cls(f"{what} {value!r} is not allowed; choose one of: {choices}")


class ConfigTypeError(ConfigError, TypeError):
    """Bad input of the wrong type (a TypeError too, where xqute 2.x raised one)."""


class SubmitError(XquteError):
    """A job could not be submitted, even after retrying transient failures."""


class BackendError(XquteError):
    """A backend failed in a way that is not a single job's fault."""


class CommandFailed(BackendError):
    """A command run by a backend exited non-zero; keeps everything it said."""

    def __init__(
        self, argv: Sequence[str], rc: int | None, stdout: str = "", stderr: str = ""
    ) -> None:
        self.argv = list(argv)
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        detail = (stderr or stdout).strip()
        if len(detail) > 2000:
            detail = detail[:2000] + " ..."
        msg = f"command {self.argv[0]!r} exited with {rc}"
        if detail:
            msg += f": {detail}"
        super().__init__(msg)


class ServerUnreachable(BackendError):
    """ssh could not run a command on a server (rc 255 or a timeout)."""

    def __init__(self, server: str, reason: str) -> None:
        self.server = server
        self.reason = reason
        super().__init__(f"ssh server {server!r} is unreachable: {reason}")


class LaunchFailed(BackendError):
    """The server answered but did not start this job; ``unseen``: because it
    does not see the job's folder."""

    def __init__(self, message: str, unseen: bool = False) -> None:
        super().__init__(message)
        self.unseen = unseen


class PluginError(XquteError):
    """A plugin's hook implementation raised; names the plugin and the hook."""


class StoreError(XquteError):
    """The queue service's store could not be read or written."""


class DbBusy(StoreError):
    """The queue db is locked by another writer, and the caller asked not to
    wait (``Database.try_now``: it will do the work elsewhere)."""


class JobNotFoundError(StoreError, LookupError):
    """No job has this id in the queue db."""


class ServiceError(XquteError):
    """The queue daemon could not be started, reached or stopped."""


class AlreadyRunningError(ServiceError):
    """A daemon already serves this db."""


class WorkflowError(XquteError):
    """A workflow definition or run is invalid."""


class DefinitionError(WorkflowError, ConfigError):
    """A definition (job, template, workflow) is invalid. ``problems`` holds
    every problem found, each as (where, what): ``("tasks[1].dependencies[0]",
    "unknown task 'extrct' (did you mean 'extract'?)")``."""

    def __init__(self, what: str, problems: Sequence[tuple[str, str]]) -> None:
        self.what = what
        self.problems = list(problems)
        lines = [f"{where}: {msg}" if where else msg for where, msg in self.problems]
        count = len(lines)
        if count == 1:  # one line: "x.yaml:5: jobs.a.schedule: ..." / "job 'a': ..."
            one = lines[0]
            super().__init__(one if one.startswith(f"{what}:") else f"{what}: {one}")
            return
        head = f"{what}: {count} problems"
        super().__init__(head + "".join(f"\n  {line}" for line in lines))


class RenderError(WorkflowError):
    """A ``#{...}`` reference is unknown or has no value (yet)."""


class DefinitionNotFoundError(WorkflowError, LookupError):
    """No job, template or workflow has that name."""


class RunNotFoundError(WorkflowError, LookupError):
    """No workflow or job run has that id."""


class ScheduleNotFoundError(WorkflowError, LookupError):
    """No job or workflow of that name has a schedule."""


class WorkdirBusy(XquteError):
    """Another run (engine or ``xqute run``) works in this workdir now."""


class Interrupted(XquteError):
    """The driver received SIGINT/SIGTERM; in-flight jobs were killed first.

    After a second signal the driver does not wait for the kills to take:
    ``still_running`` lists the jobs (``Job`` objects) that may still run."""

    def __init__(self, signum: int, still_running: Sequence[object] = ()) -> None:
        import signal

        self.signal = signum
        self.still_running = list(still_running)
        name = signal.Signals(signum).name
        if not self.still_running:
            super().__init__(f"interrupted by {name}; jobs in flight were killed")
            return
        jobs = ", ".join(
            f"job {getattr(j, 'index', j)} (id {getattr(j, 'jid', None)})"
            for j in self.still_running
        )
        super().__init__(
            f"interrupted by {name} twice; stopped without waiting for the jobs in"
            f" flight: these may still run: {jobs}"
        )
