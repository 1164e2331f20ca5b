"""The engine's arguments: validation and the older spellings.

Kept apart from the engine so that the rules for what users may pass (and the
deprecation path of the older names) read in one place.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

from . import checks
from .errors import ConfigError

TYPE_CHECKING = False  # typing is not imported at run time (xqute submit)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["check_positive_int", "resolve_engine_kwargs"]

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
            stacklevel=3,
        )
        args[new] = value
    if rest:
        warnings.warn(
            "passing scheduler options as keyword arguments "
            f"({', '.join(sorted(rest))}) is deprecated; use scheduler_opts={{...}}",
            DeprecationWarning,
            stacklevel=3,
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
