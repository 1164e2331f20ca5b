"""Where things are in a YAML file: its data with the line of every key and
item (from the YAML's own node marks), and ``FILE:LINE: a.b[1].c`` for a
problem's path. ``yaml.safe_load`` semantics only: no tags, no Python objects.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import yaml

from ..errors import ConfigError

__all__ = ["field_path", "line_of", "load_yaml", "locate", "read_source"]

Path_ = tuple[Any, ...]

# Keys and items a file may hold once its aliases are expanded: a few nested
# aliases ("billion laughs") stand for more than memory or time allow.
MAX_NODES = 1_000_000


def load_yaml(text: str, name: str = "<string>") -> tuple[Any, dict[Path_, int]]:
    """(data, path -> line) of YAML text; ``ConfigError`` naming the line of a
    syntax error."""
    lines: dict[Path_, int] = {}
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
        _walk(node, (), lines)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        raise ConfigError(
            f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"
        ) from None
    except ConfigError as exc:  # from _walk, which has no file name
        raise ConfigError(f"{name}: {exc}") from None
    except RecursionError:
        raise ConfigError(
            f"{name}: nested too deeply (or an alias contains itself); "
            "allowed: a few hundred levels"
        ) from None
    return data, lines


def _walk(node: Any, path: Path_, lines: dict[Path_, int]) -> None:
    if node is None:
        return
    lines[path] = node.start_mark.line + 1
    if len(lines) > MAX_NODES:
        raise ConfigError(
            f"line {lines[path]}: more than {MAX_NODES} keys and items "
            "once aliases are expanded"
        )
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines[(*path, key.value)] = key.start_mark.line + 1
            _walk(value, (*path, key.value), lines)
            lines[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines)


def read_source(source: Any) -> tuple[str, dict[str, Any], dict[Path_, int]]:
    if isinstance(source, Mapping):
        return "<dict>", dict(source), {}
    text, name = str(source), "<string>"
    if isinstance(source, os.PathLike) or "\n" not in text:
        name = os.fspath(source)
        try:
            with open(name, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise ConfigError(f"cannot read {name}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{name}: not UTF-8 text (byte {exc.object[exc.start]:#04x} "
                f"at offset {exc.start}); save the file as UTF-8"
            ) from None
    data, lines = load_yaml(text, name)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: the top level must be a map of blocks")
    return name, data, lines


def field_path(where: str) -> Path_:
    """``"tasks[1].dependencies[0]"`` -> ``("tasks", 1, "dependencies", 0)``."""
    out: list[Any] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", where):
        out.append(int(part[1:-1]) if part.startswith("[") else part)
    return tuple(out)


def line_of(lines: Mapping[Path_, int], path: Path_) -> int:
    """The line of ``path``, or of its longest known prefix (0: unknown)."""
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return 0


def locate(name: str, lines: Mapping[Path_, int], path: Path_) -> str:
    """``FILE:LINE: a.b[1].c``."""
    line = line_of(lines, path)
    dotted = ""
    for part in path:
        dotted += (
            f"[{part}]"
            if isinstance(part, int)
            else ("." if dotted else "") + str(part)
        )
    return f"{name}:{line}: {dotted}" if line else f"{name}: {dotted}"
