"""The body of ``POST /api/jobs``: checked field by field against exactly what
the OpenAPI document says (``SUBMIT_SCHEMA``), then handed to the store, which
checks the values as it does for every caller.

Over HTTP, sizes and times are numbers with their unit in the name
(``mem_mb``, ``timeout_s``), the working dir is absolute (a relative one would
mean the daemon's own), and no string carries a NUL byte (argv and the
environment cannot).
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..errors import ConfigError
from ..queue.requests import _NAME_RE as NAME_RE
from ..queue.requests import check_name

__all__ = ["SUBMIT_SCHEMA", "check_submit"]

MAX_INT = (1 << 31) - 1
NO_NUL = "^[^\\x00]*$"
# a character that is neither NUL nor white space, for Python (str.isspace) and
# for JSON Schema's regexes (ECMA-262 \s) alike: shell code needs one
_SOLID = (
    "[^\\x00\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a"
    "\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff]"
)
_SHELL = re.compile(f"^[^\\x00]*{_SOLID}[^\\x00]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_STR = {"type": "string", "pattern": NO_NUL}
_COUNTS = {
    "cpus": (1, 1 << 20),
    "gpus": (0, 1 << 16),
    "mem_mb": (0, 1 << 40),
    "priority": (-MAX_INT, MAX_INT),
}

SUBMIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["command"],
    "additionalProperties": False,
    "properties": {
        "command": {
            "oneOf": [
                {
                    "type": "string",
                    "pattern": _SHELL.pattern,
                    "description": "shell code",
                },
                {
                    "type": "array",
                    "minItems": 1,
                    "prefixItems": [{**_STR, "minLength": 1}],
                    "items": _STR,
                    "description": "argv, run literally",
                },
            ]
        },
        "name": {"type": ["string", "null"], "pattern": NO_NUL, "maxLength": 1000},
        "working_dir": {
            "type": ["string", "null"],
            "pattern": "^/[^\\x00]*$",
            "description": "an absolute path",
        },
        **{
            key: {"type": "integer", "minimum": lo, "maximum": hi}
            for key, (lo, hi) in _COUNTS.items()
        },
        "timeout_s": {
            "type": ["number", "null"],
            "exclusiveMinimum": 0,
            "maximum": 1e9,
        },
        "env": {
            "type": ["object", "null"],
            "propertyNames": {"pattern": _ENV_NAME.pattern},
            "additionalProperties": _STR,
        },
        "metadata": {"type": ["object", "null"]},
        "namespace": {"type": "string", "pattern": NAME_RE.pattern},
    },
}


def check_submit(body: Any) -> dict[str, Any]:
    """``submit_job`` arguments from a request body; ConfigError naming the
    field for anything the schema does not allow."""
    if not isinstance(body, dict):
        raise ConfigError("the body must be a JSON object of submit arguments")
    allowed = list(SUBMIT_SCHEMA["properties"])
    for key in body:
        if key not in allowed:
            raise ConfigError.choice("field", key, allowed)
    if "command" not in body:
        raise ConfigError("the body has no 'command' (shell code, or an argv list)")
    out: dict[str, Any] = {"command": _command(body["command"])}
    if body.get("name") is not None:
        out["job_name"] = _string("name", body["name"], 1000)
    if body.get("working_dir") is not None:
        path = _string("working_dir", body["working_dir"])
        if not path.startswith("/"):
            raise ConfigError(f"working_dir {path!r} must be an absolute path")
        out["working_dir"] = path
    for key, (lo, hi) in _COUNTS.items():
        if key in body:
            out["memory" if key == "mem_mb" else key] = _integer(key, body[key], lo, hi)
    if body.get("timeout_s") is not None:
        value = body["timeout_s"]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not 0 < value <= 1e9
        ):
            raise ConfigError(f"timeout_s {value!r} must be a number of seconds > 0")
        out["timeout"] = float(value)
    if body.get("env") is not None:
        env = body["env"]
        if not isinstance(env, dict):
            raise ConfigError(f"env {env!r} must be an object of NAME: value")
        for name, value in env.items():
            if not _ENV_NAME.match(name):
                raise ConfigError(f"environment variable name {name!r} is invalid")
            _string(f"env {name}", value)
        out["env"] = env
    if "namespace" in body:
        out["namespace"] = check_name("namespace", body["namespace"])
    if body.get("metadata") is not None:
        if not isinstance(body["metadata"], dict):
            raise ConfigError("metadata must be a JSON object")
        out["metadata"] = body["metadata"]
    return out


def _command(command: Any) -> str | list[str]:
    if isinstance(command, str):
        if not _SHELL.fullmatch(command):
            raise ConfigError(f"command {command!r} must be shell code, without NUL")
        return command
    if isinstance(command, list) and command:
        argv = [_string("command item", a) for a in command]
        if not argv[0]:
            raise ConfigError(f"command {argv!r}: the first item is the program")
        return argv
    raise ConfigError(
        f"command {command!r} must be shell code (a string) or an argv (a list)"
    )


def _string(what: str, value: Any, max_len: int | None = None) -> str:
    if not isinstance(value, str) or "\x00" in value:
        raise ConfigError(f"{what} {value!r} must be a string without NUL")
    if max_len is not None and len(value) > max_len:
        raise ConfigError(f"{what} must be at most {max_len} characters")
    return value


def _integer(what: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{what} {value!r} must be an integer from {lo} to {hi}")
    return value
