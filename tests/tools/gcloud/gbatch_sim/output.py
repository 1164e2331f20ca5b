"""--format rendering: json, yaml, value, table and projections."""

from __future__ import annotations

import json
import re

from .common import camel_to_snake
from .errors import CliError


# --------------------------------------------------------------------------- #
# Output formatting (--format)
# --------------------------------------------------------------------------- #
class Key:
    """A projection key: dotted path with optional transforms and attributes."""

    def __init__(self, text: str):
        text = text.strip()
        attrs = {}
        parts = text.split(":")
        expr, attr_parts = parts[0].strip(), parts[1:]
        for a in attr_parts:
            name, _, value = a.partition("=")
            attrs[name.strip()] = value.strip().strip("'\"")
        self.transforms = []
        while True:
            m = re.search(r"\.(\w+)\(([^()]*)\)$", expr)
            if not m:
                break
            fn, arg = m.group(1), m.group(2).strip()
            if fn not in ("basename", "segment", "len"):
                raise CliError(
                    f"[gcloud batch simulator] projection transform {fn}() is not "
                    "supported "
                    "(supported: basename(), segment(N), len())."
                )
            self.transforms.insert(0, (fn, arg))
            expr = expr[: m.start()]
        if not re.fullmatch(
            r"[A-Za-z_][\w-]*(\[-?\d+\])*(\.[A-Za-z_][\w-]*(\[-?\d+\])*)*", expr
        ):
            raise CliError(f"Invalid projection key [{text}].")
        self.path = parse_key_path(expr)
        self.label = attrs.get("label") or self._default_label()

    def _default_label(self) -> str:
        last = [p for p in self.path if isinstance(p, str)][-1]
        return camel_to_snake(last).upper()

    def get(self, obj):
        value = get_path(obj, self.path)
        for fn, arg in self.transforms:
            if fn == "basename" and isinstance(value, str):
                value = value.rstrip("/").rsplit("/", 1)[-1]
            elif fn == "segment" and isinstance(value, str):
                segs = value.split("/")
                try:
                    value = segs[int(arg or "-1")]
                except (ValueError, IndexError):
                    value = ""
            elif fn == "len":
                value = len(value) if value is not None else 0
        return value


def parse_key_path(text: str) -> list:
    path: list = []
    for part in text.split("."):
        m = re.fullmatch(r"([^\[\]]+)((?:\[-?\d+\])*)", part)
        if not m:
            raise CliError(f"Invalid key [{text}].")
        path.append(m.group(1))
        path += [int(i) for i in re.findall(r"\[(-?\d+)\]", m.group(2))]
    return path


def get_path(obj, path: list):
    value = obj
    for i, part in enumerate(path):
        if isinstance(part, int):
            if isinstance(value, list) and -len(value) <= part < len(value):
                value = value[part]
            else:
                return None
        elif isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list):
            values = [get_path(v, path[i:]) for v in value]
            return [v for v in values if v is not None] or None
        else:
            return None
        if value is None:
            return None
    return value


def set_path(out: dict, path: list, value) -> None:
    names = [p for p in path if isinstance(p, str)]
    cur = out
    for name in names[:-1]:
        cur = cur.setdefault(name, {})
    cur[names[-1]] = value


class Format:
    def __init__(self, spec: str | None, default: str):
        spec = (spec or default).strip()
        m = re.fullmatch(r"(\w+)\s*(?:\[([^\]]*)\])?\s*(?:\((.*)\))?", spec, re.S)
        if not m:
            raise CliError(f"Format [{spec}] is not a valid format.")
        self.name = m.group(1)
        if self.name not in (
            "json",
            "yaml",
            "value",
            "table",
            "none",
            "disable",
            "default",
        ):
            raise CliError(
                f"[gcloud batch simulator] Format [{self.name}] is not supported by "
                "the simulator "
                "(supported: json, yaml, value, table, none, disable, default)."
            )
        self.attrs = {}
        for a in (m.group(2) or "").split(","):
            if a.strip():
                k, _, v = a.partition("=")
                self.attrs[k.strip()] = v.strip().strip("'\"")
        self.keys = [Key(k) for k in split_top_level(m.group(3))] if m.group(3) else []

    def project(self, obj):
        if not self.keys:
            return obj
        out: dict = {}
        for key in self.keys:
            value = key.get(obj)
            if value is not None:
                set_path(out, key.path, value)
        return out

    def render(self, items, single: bool) -> str:
        if self.name in ("none", "disable"):
            return ""
        if self.name == "json":
            data = self.project(items) if single else [self.project(i) for i in items]
            return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        if self.name in ("yaml", "default"):
            if single:
                return yaml_dump(self.project(items))
            return "".join("---\n" + yaml_dump(self.project(i)) for i in items)
        rows = [items] if single else items
        if self.name == "value":
            sep = self.attrs.get("separator", "\t")
            lines = []
            for obj in rows:
                keys = self.keys or [Key("name")]
                lines.append(sep.join(value_str(k.get(obj)) for k in keys))
            return "".join(line + "\n" for line in lines)
        # table
        keys = self.keys or [Key("name")]
        table = [[value_str(k.get(obj)) for k in keys] for obj in rows]
        if table and "no-heading" not in self.attrs:
            table.insert(0, [k.label for k in keys])
        if not table:
            return ""
        widths = [max(len(r[i]) for r in table) for i in range(len(keys))]
        return "".join(
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            + "\n"
            for r in table
        )


def split_top_level(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p for p in parts if p.strip()]


def value_str(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list):
        return ";".join(value_str(v) for v in value)
    if isinstance(value, dict):
        return ";".join(f"{k}={value_str(v)}" for k, v in sorted(value.items()))
    return str(value)


_YAML_PLAIN = re.compile(r"^[A-Za-z0-9_/][A-Za-z0-9 _./@-]*$")
_YAML_SPECIAL = re.compile(
    r"^(?:true|false|yes|no|on|off|null|~|[-+]?(\d[\d_]*)?(\.\d*)?([eE][-+]?\d+)?)$",
    re.I,
)


def yaml_scalar(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if (
        _YAML_PLAIN.match(text)
        and not _YAML_SPECIAL.match(text)
        and not text.endswith(" ")
    ):
        return text
    if re.fullmatch(r"[-+]?\d+", text):
        return f"'{text}'"
    return json.dumps(text, ensure_ascii=False)


def yaml_dump(obj, indent: int = 0) -> str:
    pad = " " * indent
    if isinstance(obj, dict):
        if not obj:
            return pad + "{}\n"
        out = ""
        for key in sorted(obj):
            value = obj[key]
            if isinstance(value, dict) and value:
                out += f"{pad}{key}:\n" + yaml_dump(value, indent + 2)
            elif isinstance(value, list) and value:
                out += f"{pad}{key}:\n" + yaml_dump(value, indent)
            elif isinstance(value, str) and "\n" in value:
                body = "".join(
                    f"{pad}  {line}\n" if line else "\n"
                    for line in value.rstrip("\n").split("\n")
                )
                chomp = "" if value.endswith("\n") else "-"
                out += f"{pad}{key}: |{chomp}\n{body}"
            else:
                empty = (
                    "{}"
                    if isinstance(value, dict)
                    else "[]"
                    if isinstance(value, list)
                    else None
                )
                out += f"{pad}{key}: {empty if empty else yaml_scalar(value)}\n"
        return out
    if isinstance(obj, list):
        if not obj:
            return pad + "[]\n"
        out = ""
        for item in obj:
            if isinstance(item, (dict, list)) and item:
                inner = yaml_dump(item, indent + 2)
                out += f"{pad}- " + inner[indent + 2 :]
            else:
                if isinstance(item, dict):
                    text = "{}"
                elif isinstance(item, list):
                    text = "[]"
                else:
                    text = yaml_scalar(item)
                out += f"{pad}- {text}\n"
        return out
    return pad + yaml_scalar(obj) + "\n"


# --------------------------------------------------------------------------- #
# --filter (gcloud resource filter subset)
