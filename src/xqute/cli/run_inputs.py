"""Where ``xqute run`` gets its jobs, as an async stream of commands.

- ``xqute run FILE``: each non-empty line that is not a ``#`` comment is a
  shell command.
- ``xqute run`` (or ``-``) reads them from stdin AS THEY ARRIVE: with
  ``producer | xqute run`` the first jobs start while the producer still
  writes, not at its end.
- ``xqute run 'CMD {}' ::: a b``, ``-a FILE`` (``-`` for stdin, streamed when
  it is the only source), ``:::: FILE``: a command template and its values
  (``run_args.py``).

A line that is not UTF-8 is bad input (``ConfigError``, naming the file and
the line), never a traceback.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import ConfigError
from .run_args import expand

__all__ = ["Inputs", "open_inputs"]

STDIN = "-"


@dataclass
class Inputs:
    """The jobs of a run: ``(command, values)`` pairs (``values``: a
    template's, None for a plain command), and how many (None: streaming)."""

    jobs: AsyncIterator[tuple[str, list[str] | None]]
    total: int | None


def _decode(raw: bytes, name: str, number: int) -> str:
    try:
        return raw.decode().removesuffix("\n").removesuffix("\r")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{name}: line {number} is not UTF-8 text ({exc.reason} at byte"
            f" {exc.start}); xqute reads commands and values as UTF-8"
        ) from None


def _is_command(line: str) -> bool:
    return bool(line.strip()) and not line.lstrip().startswith("#")


def _file_lines(path: str) -> list[str]:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"file {path!r} does not exist or is not a file")
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"file {path!r} cannot be read: {exc.strerror}") from exc
    return [_decode(raw, path, n) for n, raw in enumerate(data.splitlines(), 1)]


async def _stdin_lines(stream: BinaryIO | None = None) -> AsyncIterator[str]:
    """Lines of stdin as they arrive (a thread reads; the loop never blocks)."""
    stream = stream or sys.stdin.buffer
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()

    def reader() -> None:
        try:
            for raw in stream:
                loop.call_soon_threadsafe(queue.put_nowait, raw)
        except BaseException as exc:  # reported to the run
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=reader, name="xqute-stdin", daemon=True).start()
    number = 0
    while (raw := await queue.get()) is not None:
        if isinstance(raw, BaseException):
            raise ConfigError(f"stdin cannot be read: {raw}")
        number += 1
        yield _decode(raw, "stdin", number)


async def _aiter(items: Iterable[tuple[str, list[str] | None]]) -> AsyncIterator:
    for item in items:
        yield item


def open_inputs(
    words: Sequence[str],
    sources: Sequence[Sequence[str]] = (),
    arg_files: Sequence[str] = (),
) -> Inputs:
    """The jobs of ``xqute run WORDS [::: ...] [-a FILE]``."""
    if not sources and not arg_files:
        if len(words) > 1:
            raise ConfigError(
                f"{' '.join(words)!r}: give one file of commands, or a command"
                " with its values: xqute run 'gzip {}' ::: a.txt b.txt"
            )
        file = words[0] if words else STDIN
        if file == STDIN:
            return Inputs(_commands(_stdin_lines()), None)
        commands = [(c, None) for c in _file_lines(file) if _is_command(c)]
        return Inputs(_aiter(commands), len(commands))
    template = " ".join(words)
    lists: list[Sequence[str] | None] = []  # None: stdin, streamed
    for name in arg_files:
        lists.append(None if name == STDIN else _file_lines(name))
    for kind, *items in sources:
        if kind == "values":
            lists.append(items)
        else:
            lists.extend(None if f == STDIN else _file_lines(f) for f in items)
    if lists.count(None) > 1:
        raise ConfigError("stdin ('-') can be only one of the input sources")
    if lists == [None]:  # stdin alone: jobs start as its lines arrive
        return Inputs(_template_stream(template), None)
    if None in lists:  # combined with others: read it whole first
        data = sys.stdin.buffer.read().splitlines()
        lists[lists.index(None)] = [
            _decode(raw, "stdin", n) for n, raw in enumerate(data, 1)
        ]
    jobs = [(cmd, values) for _, values, cmd in expand(template, lists)]
    return Inputs(_aiter(jobs), len(jobs))


async def _commands(lines: AsyncIterator[str]) -> AsyncIterator:
    async for line in lines:
        if _is_command(line):
            yield line, None


async def _template_stream(template: str) -> AsyncIterator:
    number = 0
    async for value in _stdin_lines():
        number += 1
        for _, values, cmd in _one(template, value, number):
            yield cmd, values


def _one(template: str, value: str, number: int) -> Iterator:
    return expand(template, [[value]], number)
