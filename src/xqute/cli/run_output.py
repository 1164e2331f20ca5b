"""What ``xqute run`` shows of its jobs, as GNU parallel users expect.

    (default, --group)  each job's stdout, then its stderr, printed whole when
                        the job ends for good (after its retries), so the
                        output of two jobs never interleaves
    --keep-order, -k    the same, in the order of the jobs, not of their ends
    --line-buffer       lines as the jobs write them (interleaved, whole lines)
    --tag               each line prefixed with the job's values (a template's
                        ``:::``/``-a`` values) or its command, and a tab
    --tagstring STR     ... with STR ({#}, {}, ... as in the command)
    --quiet             nothing of the jobs' output (their files keep it)

Job stdout goes to our stdout, job stderr to our stderr; above the progress
bar when that is shown on the same terminal, byte for byte otherwise. Output
is data: it is never read as rich markup.

``RunPlugin`` is the run's plugin (one instance per run): it prints, writes the
job log (``run_joblog.py``) and skips the jobs ``--resume`` says are done.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

from ..hooks import simplug
from ..job import Job
from .run_joblog import JobLog

__all__ = ["OUTPUT_MODES", "RunPlugin", "Sink"]

OUTPUT_MODES = ("group", "line", "quiet")
LINE_POLL_S = 0.05  # --line-buffer: how often running jobs' files are read


class Sink:
    """Where job output goes: the real stdout/stderr, or (for a terminal the
    live progress bar is on) the bar's console, which prints above it."""

    def __init__(self, console: Any = None) -> None:
        #: the live display's console, while the bar is shown (else None)
        self.console = console
        self._out_tty = sys.stdout.isatty()

    def write(self, stream: str, data: bytes) -> None:
        if not data:
            return
        if self.console is not None and (stream == "err" or self._out_tty):
            from rich.text import Text

            text = data.decode(errors="replace")
            self.console.print(Text.from_ansi(text.removesuffix("\n")), soft_wrap=True)
            return
        fh = sys.stdout if stream == "out" else sys.stderr
        fh.flush()
        fh.buffer.write(data)
        fh.buffer.flush()


def _tagged(data: bytes, tag: bytes | None) -> bytes:
    if not tag or not data:
        return data
    lines = data.split(b"\n")
    last = lines.pop()  # b"" after a final newline
    out = b"".join(tag + line + b"\n" for line in lines)
    return out + (tag + last if last else b"")


def _read(path: Any, offset: int = 0) -> bytes:
    try:
        with open(path, "rb") as fh:
            if offset:
                fh.seek(offset)
            return fh.read()
    except OSError:
        return b""


class RunPlugin:
    """The plugin of one ``xqute run``: output, job log, resume."""

    def __init__(
        self,
        *,
        mode: str = "group",
        keep_order: bool = False,
        tag: Callable[[Job], str] | None = None,
        joblog: JobLog | None = None,
        skip: Callable[[Job], bool] | None = None,
        will_retry: Callable[[Job], bool] = lambda job: False,
    ) -> None:
        self.name = f"xqute-run-{id(self)}"
        self.mode = mode
        self.keep_order = keep_order
        self.tag = tag
        self.joblog = joblog
        self.skip = skip
        self.will_retry = will_retry
        self.sink = Sink()
        self._held: dict[int, tuple[bytes, bytes] | None] = {}  # keep-order
        self._next = 0
        self._running: dict[Job, list[int]] = {}  # line mode: offsets out, err
        self._pending: dict[Job, list[bytes]] = {}  # line mode: partial lines
        self._ticker: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ hooks
    @simplug.impl
    async def on_job_submitting(self, scheduler: Any, job: Job) -> bool | None:
        if self.skip is not None and self.skip(job):
            self._done(job.index, None)
            return False
        return None

    @simplug.impl
    async def on_job_started(self, scheduler: Any, job: Job) -> None:
        if self.mode == "line":
            self._running[job] = [0, 0]
            self._pending[job] = [b"", b""]
            if self._ticker is None:
                self._ticker = asyncio.create_task(self._tick())

    @simplug.impl
    async def on_job_succeeded(self, scheduler: Any, job: Job) -> None:
        self._ended(job)

    @simplug.impl
    async def on_job_failed(self, scheduler: Any, job: Job) -> None:
        if self.will_retry(job):  # only the last trial is shown and logged
            self._running.pop(job, None)
            self._pending.pop(job, None)
            return
        self._ended(job)

    # ------------------------------------------------------------------ output
    def _ended(self, job: Job) -> None:
        if self.joblog is not None:
            self.joblog.write(job)
        if self.mode == "line":
            self._line_flush(job, final=True)
        elif self.mode == "group":
            out, err = _read(job.stdout_file), _read(job.stderr_file)
            self._done(job.index, (out, err), self._tag_bytes(job))

    def _done(
        self, index: int, output: tuple[bytes, bytes] | None, tag: bytes | None = None
    ) -> None:
        if output is not None:
            output = (_tagged(output[0], tag), _tagged(output[1], tag))
        if not self.keep_order:
            if output is not None:
                self._emit(output)
            return
        self._held[index] = output
        while self._next in self._held:
            held = self._held.pop(self._next)
            if held is not None:
                self._emit(held)
            self._next += 1

    def _emit(self, output: tuple[bytes, bytes]) -> None:
        out, err = output
        if out and not out.endswith(b"\n"):
            out += b"\n"
        if err and not err.endswith(b"\n"):
            err += b"\n"
        self.sink.write("out", out)
        self.sink.write("err", err)

    def finish(self) -> None:
        """The run is over: print what --keep-order still holds (the jobs
        before it never ran), stop the line reader, close the job log."""
        if self._ticker is not None:
            self._ticker.cancel()
        for index in sorted(self._held):
            held = self._held[index]
            if held is not None:
                self._emit(held)
        self._held.clear()
        if self.joblog is not None:
            self.joblog.close()

    def _tag_bytes(self, job: Job) -> bytes | None:
        if self.tag is None:
            return None
        return (self.tag(job) + "\t").encode(errors="replace")

    # ------------------------------------------------------------------ lines
    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(LINE_POLL_S)
            for job in list(self._running):
                self._line_flush(job, final=False)

    def _line_flush(self, job: Job, final: bool) -> None:
        offsets = self._running.get(job)
        if offsets is None:
            return
        tag = self._tag_bytes(job)
        for i, (path, stream) in enumerate(
            ((job.stdout_file, "out"), (job.stderr_file, "err"))
        ):
            data = _read(path, offsets[i])
            offsets[i] += len(data)
            data = self._pending[job][i] + data
            cut = len(data) if final else data.rfind(b"\n") + 1
            self._pending[job][i] = data[cut:]
            chunk = data[:cut]
            if final and chunk and not chunk.endswith(b"\n"):
                chunk += b"\n"
            self.sink.write(stream, _tagged(chunk, tag))
        if final:
            self._running.pop(job, None)
            self._pending.pop(job, None)
