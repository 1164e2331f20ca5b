"""The complete batch backend of docs/writing-a-backend.md runs as written.

Its code block is taken from the page and run against three small shell
scripts playing MiniBatch's tools (mb-submit starts the script detached and
prints its id; mb-stat lists the live ones as running; mb-del TERMs them), so
the page cannot drift from what the backend contract is.
"""

import asyncio
import re
import textwrap
from pathlib import Path

import pytest

from xqute import JobOutcome, Xqute

DOC = Path(__file__).parents[2] / "docs" / "writing-a-backend.md"
TOOLS = {
    "mb-submit": """
        [ "$1" = -q ] && shift 2
        setsid bash "$1" </dev/null >/dev/null 2>&1 &
        echo "Submitted job $!"
    """,
    "mb-stat": """
        for id in "$@"; do
            s=$(cut -d' ' -f3 "/proc/$id/stat" 2>/dev/null) || continue
            [ -n "$s" ] && [ "$s" != Z ] && echo "$id R"
        done
        true
    """,
    "mb-del": """
        for id in "$@"; do kill -TERM -- "-$id" 2>/dev/null; done
        true
    """,
}


def backend_class():
    text = DOC.read_text()
    section = text[text.index("## A complete batch backend") :]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)[:1]
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace["MiniBatchScheduler"]


@pytest.fixture
def tools(tmp_path):
    folder = tmp_path / "bin"
    folder.mkdir()
    paths = {}
    for name, body in TOOLS.items():
        path = folder / name
        path.write_text("#!/bin/bash\n" + textwrap.dedent(body))
        path.chmod(0o755)
        paths[name] = str(path)
    return paths


async def test_the_documented_backend_runs_jobs(tools, tmp_path):
    xqute = Xqute(
        backend_class(),
        workdir=str(tmp_path / "wd"),
        forks=3,
        scheduler_opts={**tools, "mb_queue": "short", "poll_interval_s": 0.05},
    )
    ok = await xqute.feed(["echo", "a b"])
    failed = await xqute.feed("exit 3")
    slow = await xqute.feed(["sleep", "30"])

    async def kill_when_running():
        while slow.jid is None or slow.read_status_file() != 3:
            await asyncio.sleep(0.05)
        await xqute.scheduler.kill_jobs([slow])  # one mb-del

    killer = asyncio.ensure_future(kill_when_running())
    await asyncio.wait_for(xqute.run_until_complete(), 30)
    await killer
    assert (ok.rc, ok.outcome) == (0, JobOutcome.SUCCEEDED)
    assert ok.stdout_file.read_text() == "a b\n"
    assert (failed.rc, failed.outcome) == (3, JobOutcome.FAILED)
    assert slow.rc == 143 and slow.outcome is JobOutcome.CANCELLED
    assert xqute.scheduler.config["queue"] == "short"
