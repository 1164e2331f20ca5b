"""Job states, outcomes and error strategies.

A job's *state* only moves forward within one trial (INIT -> QUEUED -> SUBMITTED ->
RUNNING -> FINISHED | FAILED, with KILLING on the way to a kill); a retry starts a new
trial from QUEUED. *Why* a job ended is kept apart, in ``JobOutcome``, so that
"failed with rc 3" and "killed by the cluster for exceeding its time limit" stay
distinguishable while both count as failures for the error strategy.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import IntEnum, StrEnum

from .errors import ConfigError
from .queue.states import QueueState  # (re-exported: the queue's own module)

__all__ = ["JobErrorStrategy", "JobOutcome", "JobStatus", "QueueState"]


class JobStatus(IntEnum):
    INIT = 0
    QUEUED = 1
    SUBMITTED = 2
    RUNNING = 3
    FINISHED = 4
    FAILED = 5
    KILLING = 6

    @classmethod
    def get_name(cls, value: int) -> str:
        """The name of a status value, e.g. ``get_name(4) == "FINISHED"``."""
        try:
            return cls(int(value)).name
        except (ValueError, TypeError) as exc:
            raise ConfigError.choice(
                "job status", value, [s.value for s in cls]
            ) from exc

    @property
    def is_done(self) -> bool:
        return self in (JobStatus.FINISHED, JobStatus.FAILED)


class JobOutcome(StrEnum):
    """Why a job ended. Everything but SUCCEEDED and SKIPPED is a failure."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the command exited non-zero
    SUBMIT_FAILED = "submit_failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"  # cancelled outside xqute (e.g. scancel)
    KILLED = "killed"  # killed by xqute (halt, signal, user)
    OUT_OF_MEMORY = "out_of_memory"
    NODE_FAILURE = "node_failure"
    PREEMPTED = "preempted"
    LOST = "lost"  # the backend forgot it and it left no rc behind
    DEPENDENCY_FAILED = "dependency_failed"
    SKIPPED = "skipped"  # a plugin's on_job_submitting returned False

    @property
    def is_failure(self) -> bool:
        return self not in (JobOutcome.SUCCEEDED, JobOutcome.SKIPPED)


class _Choices(type):
    """``JobErrorStrategy("retry")`` and ``for s in JobErrorStrategy``."""

    def __call__(cls, value: object) -> str:
        for choice in cls:
            if value == choice:
                return choice
        raise ValueError(f"{value!r} is not a valid {cls.__name__}")

    def __iter__(cls) -> Iterator[str]:
        return iter((cls.IGNORE, cls.RETRY, cls.HALT))  # type: ignore[attr-defined]


class JobErrorStrategy(metaclass=_Choices):
    """What the engine does when a job fails.

    The strategies are plain strings, as in xqute 2.x: clients put them in
    configs that are written out as TOML (pipen's ``JobErrorStrategy.IGNORE``
    default), which takes strings, not enum members.
    """

    IGNORE = "ignore"  # record the failure, go on
    RETRY = "retry"  # run it again, up to num_retries times, after a backoff
    HALT = "halt"  # kill everything in flight, submit nothing more

    @classmethod
    def parse(cls, value: str) -> str:
        """The strategy named ``value`` (the class's own string, so that ``is``
        compares), or ConfigError listing the strategies."""
        try:
            return cls(value)
        except ValueError as exc:
            raise ConfigError.choice("error_strategy", value, list(cls)) from exc
