"""--filter: the subset of gcloud resource filter expressions."""

from __future__ import annotations

import json
import re
import unicodedata

from .errors import CliError
from .output import get_path, parse_key_path


# --------------------------------------------------------------------------- #
class FilterError(CliError):
    pass


_OPS = ("!=", "<=", ">=", "!~", ":", "=", "<", ">", "~")


def tokenize_filter(text: str):
    tokens = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            tokens.append(("PAREN", ch))
            i += 1
        elif ch in "\"'":
            j = i + 1
            buf = ""
            while j < n and text[j] != ch:
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                buf += text[j]
                j += 1
            if j >= n:
                raise FilterError(f"Unterminated string in filter expression [{text}].")
            tokens.append(("STRING", buf))
            i = j + 1
        else:
            for op in _OPS:
                if text.startswith(op, i):
                    tokens.append(("OP", op))
                    i += len(op)
                    break
            else:
                j = i
                while (
                    j < n
                    and not text[j].isspace()
                    and text[j] not in "()\"'"
                    and not any(text.startswith(op, j) for op in _OPS)
                ):
                    j += 1
                tokens.append(("WORD", text[i:j]))
                i = j
    return tokens


def normalize_text(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    text = text.lower()
    return "".join(
        c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
    )


def _as_number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def _scalar_matches(value, pattern: str, op: str) -> bool:
    """gcloud's current (pre-"OnePlatform") ':' and '=' semantics."""
    if isinstance(value, bool):
        value = 1 if value else 0
    if isinstance(value, (int, float)):
        num = _as_number(pattern)
        if num is not None and num == value:
            return True
        if value == 0 and pattern.lower() == "false":
            return True
        if value == 1 and pattern.lower() == "true":
            return True
        text = re.sub(r"\.0*$", "", str(value))
    elif value == pattern:
        return True
    elif value is None:
        if pattern == "":
            return True
        if pattern == "*" and op == ":":
            return False
        text = "null"
    else:
        text = normalize_text(value)
    pat = normalize_text(pattern)
    if op == "=":
        return re.search("^" + re.escape(pat) + "$", text, re.I | re.M) is not None
    # ':' operator
    if pattern == "*":
        return bool(text)
    parts = pat.split("*")
    if len(parts) > 2:
        raise FilterError(f"At most one * expected in : patterns [{pattern}].")
    if len(parts) == 1:
        regex = re.escape(parts[0])
    elif pattern.startswith("*"):
        regex = re.escape(parts[1]) + "$"
    elif pattern.endswith("*"):
        regex = "^" + re.escape(parts[0])
    else:
        regex = "^" + re.escape(parts[0]) + ".*" + re.escape(parts[1]) + "$"
    return re.search(regex, text, re.I | re.M) is not None


def _word_match(value, patterns: list[str], op: str) -> bool:
    if isinstance(value, dict):
        values = list(value.keys()) + list(value.values())
    elif isinstance(value, list):
        values = value or [None]
    else:
        values = [value]
    return any(_scalar_matches(v, p, op) for v in values for p in patterns)


class Term:
    def __init__(self, key: str | None, op: str | None, operand):
        self.key, self.op, self.operand = key, op, operand
        self.path = parse_key_path(key) if key else None
        if op in ("~", "!~"):
            try:
                self.regex = re.compile(operand)
            except re.error as e:
                raise FilterError(
                    f"Filter expression RE pattern [{operand}]: {e}"
                ) from e

    def evaluate(self, obj) -> bool:
        if self.key is None:  # global restriction: any value contains the word
            needle = normalize_text(self.operand)
            return needle in normalize_text(json.dumps(obj))
        value = get_path(obj, self.path)
        patterns = self.operand if isinstance(self.operand, list) else [self.operand]
        op = self.op
        if op in (":", "="):
            return _word_match(value, patterns, op)
        if op == "!=":
            return not _word_match(value, patterns, "=")
        if op in ("~", "!~"):
            values = value if isinstance(value, list) else [value]
            hit = any(isinstance(v, str) and self.regex.search(v) for v in values)
            return hit if op == "~" else not hit
        values = value if isinstance(value, list) else [value]
        for v in values:
            a, b = _as_number(v), _as_number(self.operand)
            if a is None or b is None:
                if v is None:
                    continue
                a, b = (v if isinstance(v, str) else json.dumps(v)), self.operand
            try:
                if {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]:
                    return True
            except TypeError:
                continue
        return False


class Node:
    def __init__(self, kind: str, *children):
        self.kind, self.children = kind, children

    def evaluate(self, obj) -> bool:
        if self.kind == "AND":
            return all(c.evaluate(obj) for c in self.children)
        if self.kind == "OR":
            return any(c.evaluate(obj) for c in self.children)
        return not self.children[0].evaluate(obj)


class FilterParser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize_filter(text)
        self.pos = 0

    def peek(self, offset: int = 0):
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else (None, None)

    def next(self):
        tok = self.peek()
        self.pos += 1
        return tok

    def error(self, msg: str):
        return FilterError(f"{msg} in filter expression [{self.text}].")

    def parse(self):
        if not self.tokens:
            return Node("AND")
        node = self.parse_conjunction()
        if self.pos < len(self.tokens):
            raise self.error(f"Unexpected token [{self.peek()[1]}]")
        return node

    def parse_conjunction(self):
        nodes = [self.parse_andor()]
        while self.peek()[0] is not None and self.peek() != ("PAREN", ")"):
            nodes.append(self.parse_andor())
        return nodes[0] if len(nodes) == 1 else Node("AND", *nodes)

    def parse_andor(self):
        left = self.parse_unary()
        seen = None
        while self.peek()[0] == "WORD" and self.peek()[1] in ("AND", "OR"):
            op = self.next()[1]
            if seen and op != seen:
                raise self.error(
                    "Parenthesis grouping is required when AND and OR are combined"
                )
            seen = op
            left = Node(op, left, self.parse_unary())
        return left

    def parse_unary(self):
        kind, value = self.peek()
        if kind == "WORD" and value == "NOT":
            self.next()
            return Node("NOT", self.parse_unary())
        if kind == "PAREN" and value == "(":
            self.next()
            node = self.parse_conjunction()
            if self.next() != ("PAREN", ")"):
                raise self.error("Missing closing parenthesis")
            return node
        if kind == "WORD" and value.startswith("-") and len(value) > 1:
            self.tokens[self.pos] = ("WORD", value[1:])
            return Node("NOT", self.parse_term())
        return self.parse_term()

    def parse_term(self):
        kind, value = self.next()
        if kind not in ("WORD", "STRING") or (
            kind == "WORD" and value in ("AND", "OR")
        ):
            raise self.error(f"Term expected, got [{value}]")
        if self.peek()[0] != "OP":
            return Term(None, None, value)  # global restriction
        if kind != "WORD":
            raise self.error(f"Invalid key [{value}]")
        op = self.next()[1]
        okind, ovalue = self.peek()
        if okind == "PAREN" and ovalue == "(" and op in (":", "="):
            self.next()
            items = []
            while self.peek() != ("PAREN", ")"):
                k, v = self.next()
                if k is None:
                    raise self.error("Missing closing parenthesis")
                if k not in ("WORD", "STRING"):
                    raise self.error(f"Operand expected, got [{v}]")
                items += [x for x in v.split(",") if x] if k == "WORD" else [v]
            self.next()
            operand = items
        elif okind in ("WORD", "STRING"):
            self.next()
            operand = ovalue
        else:
            raise self.error(f"Operand expected after [{value}{op}]")
        try:
            return Term(value, op, operand)
        except CliError:
            raise
        except Exception:
            raise self.error(f"Invalid key [{value}]") from None


def compile_filter(text: str | None):
    if not text or not text.strip():
        return None
    return FilterParser(text).parse()
