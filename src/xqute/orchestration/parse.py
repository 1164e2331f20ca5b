"""From what users give (a model, a dict from YAML or JSON) to a validated
model, with pydantic's errors turned into the same ``(where, what)`` problems
as the cross-definition checks, so that every entry point reports alike:
``tasks[1].retry.backoff: unknown type 'expo'; choose one of ...``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import DefinitionError

__all__ = ["dump", "model_problems", "parse", "where"]

M = TypeVar("M", bound=BaseModel)


def where(loc: Sequence[Any]) -> str:
    """``("tasks", 1, "dependencies", 0)`` -> ``"tasks[1].dependencies[0]"``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and not _internal(part):
            out += ("." if out else "") + part
    return out


def _internal(part: str) -> bool:
    """pydantic's own steps in a location (union tags, validator names)."""
    return "[" in part or "(" in part or part in ("exponential", "linear")


def model_problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for err in exc.errors(include_url=False):
        msg = str(err["msg"])
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
            loc = err["loc"]
            problems.append((where(loc), f"{msg} {loc[-1]!r}"))
            continue
        if err["type"] == "union_tag_invalid":
            ctx = err.get("ctx") or {}
            msg = (
                f"unknown type {ctx.get('tag')!r}; choose one of"
                f" {ctx.get('expected_tags')}"
            )
        elif "input" in err and err["type"] in (
            "string_pattern_mismatch",
            "literal_error",
        ):
            msg = f"{err['input']!r}: {msg}"
        inner = (err.get("ctx") or {}).get("error")
        if isinstance(inner, DefinitionError):  # a model built by a validator
            at = where(err["loc"])
            problems.extend(
                (f"{at}.{w}" if at and w else at or w, m) for w, m in inner.problems
            )
            continue
        key = getattr(inner, "key", None)
        problems.append((where((*err["loc"], key) if key else err["loc"]), msg))
    return problems


def parse(cls: type[M], value: Any, what: str) -> M:
    """``value`` as a ``cls`` (a ``cls`` already, or a dict of its fields);
    ``DefinitionError`` naming ``what`` with every problem otherwise."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise DefinitionError(
            what, [("", f"expected a {cls.__name__} or a dict, got {value!r}")]
        )
    try:
        return cls.model_validate(value)
    except ValidationError as exc:
        raise DefinitionError(what, model_problems(exc)) from None


def dump(model: BaseModel) -> dict[str, Any]:
    """The JSON stored for a model (None-valued fields left out: they are the
    defaults, so loading it back gives the same model)."""
    return model.model_dump(mode="json", exclude_none=True, by_alias=False)
