"""The workflow verbs as a user runs them: real processes, the embedded pool
of ``--wait`` (no daemon), a failed run resumed with ``xqute workflow retry``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.service


def test_a_failed_run_resumed_from_the_cli(db_path, tmp_path):
    flag = tmp_path / "ok"
    spec = tmp_path / "rw.yaml"
    spec.write_text(
        "definitions:\n"
        "  workflows:\n"
        "    rw:\n"
        "      tasks:\n"
        "        - {name: a, shell: 'echo A >> ledger; echo A > $XQUTE_OUTPUT'}\n"
        f"        - {{name: b, dependencies: [a], shell: 'test -f {flag}"
        " && echo got #{a.output}'}\n"
    )
    env = {**os.environ, "XQUTE_DB": str(db_path)}

    def xqute(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "xqute", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert xqute("apply", "-f", str(spec)).returncode == 0
    first = xqute("workflow", "run", "rw", "--wait", "--json")
    assert first.returncode == 1, first.stderr  # b failed
    run = json.loads(first.stdout)
    assert [t["state"] for t in run["tasks"]] == ["succeeded", "failed"]
    flag.touch()
    again = xqute("workflow", "retry", str(run["id"]), "--wait", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["attempt"] == 2
    logs = xqute("workflow", "logs", str(run["id"]), "--task", "b").stdout
    assert "==> b attempt 1 (job" in logs  # the run's first attempt
    assert "==> b attempt 1 (run attempt 2, job" in logs and "got A" in logs
    ledgers = list(tmp_path.glob("**/ledger"))
    assert sum(p.read_text().count("A") for p in ledgers) == 1  # a ran once
    bad = xqute("workflow", "logs", str(run["id"]), "--task", "c")
    assert bad.returncode == 2 and "its tasks: a, b" in bad.stderr


def test_ctrl_c_of_a_wait_says_the_run_goes_on(orch, db_path, tmp_path):
    # orch: its teardown kills whatever of the run would still be running
    import signal
    import time

    spec = tmp_path / "slow.yaml"
    spec.write_text(
        "definitions:\n  workflows:\n    slow:\n      tasks:\n"
        # a runs until the test says "go": the run cannot end before the Ctrl-C
        "        - {name: a, shell: 'touch started; until [ -e go ]; do sleep 0.05;"
        " done'}\n"
        "        - {name: b, dependencies: [a], command: ['true']}\n"
    )
    env = {**os.environ, "XQUTE_DB": str(db_path)}
    cmd = [sys.executable, "-m", "xqute"]
    subprocess.run([*cmd, "apply", "-f", str(spec)], env=env, check=True, timeout=60)
    proc = subprocess.Popen(
        [*cmd, "workflow", "run", "slow", "--wait"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as a terminal delivers it: a test run started in the background
        # of a shell (``.ci/run &``) inherits SIGINT ignored, and Python then
        # keeps ignoring it (no KeyboardInterrupt): the run went on to rc 0
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while not (started := list(tmp_path.glob("**/started"))):
        assert time.monotonic() < deadline, "task a did not start"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    (started[0].parent / "go").touch()  # a ends: the interrupted wait's pool stops
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "interrupted: run 1 goes on (not cancelled)" in err
    status = subprocess.run(
        [*cmd, "workflow", "status", "1", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(status.stdout)["state"] == "running"  # for a pool to finish
