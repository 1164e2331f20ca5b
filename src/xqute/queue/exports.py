"""The environment a queued job runs with: the submitter's, captured when it is
submitted, as ``sbatch --export`` does.

    ALL       every variable of the submitter, and nothing of the pool's: the
              job sees the submitter's environment (its PATH, its venv, what it
              exported), plus ``env`` and xqute's own (XQUTE_*, the GPUs).
              ``xqute submit``'s default.
    NONE      none of the submitter's: the pool's environment, plus ``env``.
              The Python API's default (a program says what its jobs need).
    A,B       these variables of the submitter (those it has), over the
              pool's environment; ``A=v`` gives one a value; ``ALL,A=v`` too.

Stored in ``job_queue.env`` (JSON) as the variables; a job that must see them
only (ALL) also has the key ``""`` (never a variable's name) set to "ALL".
Variables whose names a shell cannot export (``BASH_FUNC_x%%``) and xqute's
per-job ones (``XQUTE_JOB_*``, ``XQUTE_METADIR``, ``XQUTE_ARRAY_INDEX``: those
of the submitter's own job, if it is one) are not captured.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from .. import checks
from ..errors import ConfigError
from .jsontext import dumps

TYPE_CHECKING = False  # typing is not imported at run time (xqute submit)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["EXACT_KEY", "PreparedEnv", "env_json", "split_env"]

EXACT_KEY = ""
_PER_JOB = ("XQUTE_JOB_", "XQUTE_METADIR", "XQUTE_ARRAY_INDEX")


class PreparedEnv(str):
    """A job's env already as stored (JSON): what ``--file``/``--array`` give
    all their jobs, serialised once."""


def _valid_name(key: Any) -> bool:
    return isinstance(key, str) and key.isidentifier() and key.isascii()


def _parse(export: str | Sequence[str]) -> tuple[bool, list[str], dict[str, str]]:
    """(all, names, values) of an --export spec."""
    items = export.split(",") if isinstance(export, str) else list(export)
    everything, names, values = False, [], {}
    for item in (i.strip() for i in items):
        if item.upper() in ("ALL", "NONE"):
            if len(items) > 1 and item.upper() == "NONE":
                raise ConfigError(f"--export {export!r}: NONE stands alone")
            everything = everything or item.upper() == "ALL"
            continue
        name, eq, value = item.partition("=")
        if not _valid_name(name):
            raise ConfigError(
                f"--export {export!r}: {name!r} is not a variable name; give ALL,"
                " NONE, or names (NAME or NAME=value), comma-separated"
            )
        if eq:
            values[name] = value
        else:
            names.append(name)
    return everything, names, values


def env_json(
    env: Mapping[str, Any] | str | None,
    export_env: str | Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """The stored JSON of a job's env: ``env`` (NAME: value) over what
    ``export_env`` takes from ``environ`` (default: this process's)."""
    if isinstance(env, PreparedEnv):
        return env
    given = checks.env_vars(env, "env") or {}
    everything, names, values = _parse(export_env or "NONE")
    environ = os.environ if environ is None else environ
    out: dict[str, str] = {}
    if everything:
        out = {
            k: v
            for k, v in environ.items()
            if _valid_name(k) and not k.startswith(_PER_JOB)
        }
    else:
        out = {k: environ[k] for k in names if k in environ}
    out.update(values)
    out.update(given)
    if everything:
        out[EXACT_KEY] = "ALL"
    return dumps(out) if out else None


def split_env(stored: Mapping[str, str] | None) -> tuple[dict[str, str], bool]:
    """(the variables, whether the job sees only them) of a stored env."""
    env = dict(stored or {})
    exact = env.pop(EXACT_KEY, None) == "ALL"
    return env, exact
