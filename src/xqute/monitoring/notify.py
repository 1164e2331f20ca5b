"""Delivering one notification: a command gets the alert JSON on stdin, a webhook
gets it as a JSON POST. Both have a timeout; a failure is returned as text
(the outbox retries it), never raised.

The command runs as an argv (no shell), in a session of its own, so that a
timeout kills it and whatever it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import signal
import urllib.error
import urllib.request
from typing import Any

from .rules import NotifierSpec

__all__ = ["deliver"]


async def deliver(spec: NotifierSpec, payload: dict[str, Any]) -> str | None:
    """Send ``payload`` through ``spec``; None when delivered, else why not."""
    body = json.dumps(payload).encode()
    if spec.command:
        return await _run_command(spec, body)
    return await asyncio.to_thread(_post, spec, body)


async def _run_command(spec: NotifierSpec, body: bytes) -> str | None:
    try:
        proc = await asyncio.create_subprocess_exec(
            *spec.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        return f"cannot run {spec.command[0]!r}: {exc}"
    try:
        _, err = await asyncio.wait_for(proc.communicate(body), spec.timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        return f"{spec.command[0]!r} did not finish within {spec.timeout_s:g}s"
    if proc.returncode != 0:
        said = err.decode(errors="replace").strip()[-300:]
        return f"{spec.command[0]!r} exited with {proc.returncode}" + (
            f": {said}" if said else ""
        )
    return None


def _post(spec: NotifierSpec, body: bytes) -> str | None:
    headers = {"Content-Type": "application/json", "User-Agent": "xqute-alerts"}
    headers.update(dict(spec.headers))
    request = urllib.request.Request(
        spec.webhook or "", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=spec.timeout_s) as response:
            response.read(1 << 16)
    except urllib.error.HTTPError as exc:
        return f"webhook {spec.webhook} answered {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        return f"webhook {spec.webhook} failed: {getattr(exc, 'reason', exc)}"
    except (http.client.HTTPException, ValueError) as exc:
        # not an HTTP answer (BadStatusLine, LineTooLong ...), a URL urllib
        # cannot use: a failure like the others (raised, it would stop the
        # sender at this row at every round, and the rows behind it)
        what = type(exc).__name__
        return f"webhook {spec.webhook} failed: {what}: {exc}"[:500]
    return None
