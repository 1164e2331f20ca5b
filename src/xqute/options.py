"""The engine's arguments: validation and the older spellings.

Kept apart from the engine so that the rules for what users may pass (and the
deprecation path of the older names) read in one place.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import checks
from .errors import ConfigError
from .retry import check_backoff
from .status import JobErrorStrategy

__all__ = ["EngineArgs", "check_positive_int", "engine_args", "resolve_engine_kwargs"]

# older name -> current name
RENAMED_ARGS = {
    "scheduler_forks": "forks",
    "job_metadir": "workdir",
    "job_error_strategy": "error_strategy",
    "job_num_retries": "num_retries",
    "job_submission_batch": "submission_batch",
}


#: an integer of at least ``minimum`` (``checks.positive_int``)
check_positive_int = checks.positive_int


def resolve_engine_kwargs(
    given: dict[str, Any], defaults: Mapping[str, Any], extra: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Map older keyword spellings onto the current arguments.

    ``given``: the current arguments as passed; ``defaults``: their defaults;
    ``extra``: any other keyword arguments. Returns (arguments, scheduler options
    passed as plain keywords). Both older forms warn with a DeprecationWarning.
    """
    args = dict(given)
    rest = dict(extra)
    for old, new in RENAMED_ARGS.items():
        if old not in rest:
            continue
        value = rest.pop(old)
        if args[new] != defaults[new] and args[new] != value:
            raise ConfigError(f"give either {new}= or the older {old}=, not both")
        warnings.warn(
            f"Xqute({old}=...) is deprecated; use {new}=...",
            DeprecationWarning,
            stacklevel=4,
        )
        args[new] = value
    if rest:
        warnings.warn(
            "passing scheduler options as keyword arguments "
            f"({', '.join(sorted(rest))}) is deprecated; use scheduler_opts={{...}}",
            DeprecationWarning,
            stacklevel=4,
        )
    return args, rest


def merge_scheduler_opts(
    scheduler_opts: Mapping[str, Any] | None, from_kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    if scheduler_opts is None:
        scheduler_opts = {}
    if not isinstance(scheduler_opts, Mapping):
        raise ConfigError(f"scheduler_opts {scheduler_opts!r} must be a dict")
    both = set(scheduler_opts) & set(from_kwargs)
    if both:
        raise ConfigError(
            f"scheduler option(s) {sorted(both)} given both in scheduler_opts and as"
            " keyword arguments"
        )
    return {**from_kwargs, **scheduler_opts}


@dataclass(frozen=True, slots=True)
class EngineArgs:
    """``Xqute``'s arguments, checked, with the older spellings mapped."""

    workdir: Any
    forks: int
    num_retries: int
    error_strategy: JobErrorStrategy
    submission_batch: int
    scheduler_opts: dict[str, Any]
    #: (first retry delay, longest retry delay)
    retry_backoff_s: tuple[float, float]


def engine_args(
    given: dict[str, Any],
    defaults: Mapping[str, Any],
    extra: dict[str, Any],
    scheduler_opts: Mapping[str, Any] | None,
    keyword_only: tuple[float, float, str | None],
) -> EngineArgs:
    """``Xqute``'s arguments (``given``, their ``defaults``, any other keyword
    arguments in ``extra``; ``keyword_only``: retry_backoff_s,
    retry_backoff_max_s, jobname_prefix) checked; backend options merged from
    ``scheduler_opts`` and the older plain keywords."""
    backoff_s, backoff_max_s, jobname_prefix = keyword_only
    check_backoff(backoff_s, backoff_max_s)
    if jobname_prefix is not None and not isinstance(jobname_prefix, str):
        raise ConfigError(f"jobname_prefix {jobname_prefix!r} must be a string")
    args, opts_from_kwargs = resolve_engine_kwargs(given, defaults, extra)
    forks = check_positive_int("forks", args["forks"])
    batch = args["submission_batch"]
    return EngineArgs(
        workdir=checks.path("workdir", args["workdir"]),
        forks=forks,
        num_retries=check_positive_int("num_retries", args["num_retries"], 0),
        error_strategy=JobErrorStrategy.parse(args["error_strategy"]),
        submission_batch=(
            forks if batch is None else check_positive_int("submission_batch", batch)
        ),
        scheduler_opts=merge_scheduler_opts(scheduler_opts, opts_from_kwargs),
        retry_backoff_s=(float(backoff_s), float(backoff_max_s)),
    )
