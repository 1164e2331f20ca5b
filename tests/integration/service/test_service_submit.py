"""``xqute submit`` as a Slurm user expects it: the job gets the submitter's
environment and cwd (--export), batches in one transaction (--file), arrays
with a throttle (--array 1-N%M), and no silent waits: a warning when no pool
serves the db or none can ever run the job, errors for a db that is not
there, ``service status`` telling a dead pool and exiting 3 when down."""

import json
import os
import signal
import subprocess
import sys

import pytest
from service_helpers import read, wait_final, wait_for

pytestmark = pytest.mark.service


def xqute(*args, db, env=None, cwd=None, input=None):
    return subprocess.run(
        [sys.executable, "-m", "xqute", *args, "--db", str(db)]
        if args[0] not in ("submit",)
        else [sys.executable, "-m", "xqute", args[0], "--db", str(db), *args[1:]],
        capture_output=True,
        text=True,
        env=env or {**os.environ},
        cwd=cwd,
        input=input,
        timeout=120,
    )


PROBE = 'echo "${SUBMITTER_VAR-unset}|${POOL_ONLY-unset}|$(tool 2>/dev/null)|$PWD"'


@pytest.fixture
def submitter_env(tmp_path, monkeypatch):
    """The daemon's environment has POOL_ONLY; the submitter's has
    SUBMITTER_VAR and a ``tool`` on its PATH that the daemon's PATH lacks."""
    monkeypatch.setenv("POOL_ONLY", "pool")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "tool").write_text("#!/bin/sh\necho submitter-tool\n")
    (bin_dir / "tool").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "POOL_ONLY"}
    env["SUBMITTER_VAR"] = "mine"
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    here = tmp_path / "here"
    here.mkdir()
    return env, here


def test_the_job_gets_the_submitters_environment_and_cwd(
    daemon, store, db_path, submitter_env
):
    daemon(workers=2, cpus=2)
    env, here = submitter_env
    cases = {
        (): f"mine|unset|submitter-tool|{here}",  # default: ALL, like sbatch
        ("--export", "ALL"): f"mine|unset|submitter-tool|{here}",
        ("--export", "NONE"): f"unset|pool||{here}",
        ("--export", "SUBMITTER_VAR"): f"mine|pool||{here}",
        ("--export", "SUBMITTER_VAR=given"): f"given|pool||{here}",
    }
    ids = {}
    for args, expected in cases.items():
        out = xqute("submit", *args, "--shell", PROBE, db=db_path, env=env, cwd=here)
        assert out.returncode == 0, out.stderr
        ids[int(out.stdout)] = expected
    jobs = wait_final(store, ids)
    for job_id, expected in ids.items():
        assert read(jobs[job_id]["stdout"]).strip() == expected, job_id
    # the Python API: env= over export_env= (default NONE: the pool's)
    os.environ["API_ONLY"] = "api"  # in this process, not in the daemon's
    try:
        probe = ["sh", "-c", 'echo "${API_ONLY-unset}|$X"']
        api = store.submit_job(probe, export_env="ALL", env={"X": "1"})
        plain = store.submit_job(probe, env={"X": "1"})
    finally:
        del os.environ["API_ONLY"]
    jobs = wait_final(store, [api, plain])
    assert read(jobs[api]["stdout"]).strip() == "api|1"
    assert read(jobs[plain]["stdout"]).strip() == "unset|1"


def test_submit_file_and_arrays(daemon, store, db_path, tmp_path):
    daemon(workers=4, cpus=4)
    lines = [f"echo {i} > {tmp_path}/f{i}" for i in range(300)]
    jobs_file = tmp_path / "jobs.txt"
    jobs_file.write_text("# a comment\n\n" + "\n".join(lines) + "\n")
    out = xqute("submit", "--file", str(jobs_file), db=db_path)
    assert out.returncode == 0, out.stderr
    ids = [int(x) for x in out.stdout.split()]
    assert ids == list(range(ids[0], ids[0] + 300))  # one transaction
    wait_final(store, ids, timeout_s=120)
    assert all((tmp_path / f"f{i}").read_text() == f"{i}\n" for i in range(300))
    # an array with a throttle: indexes in $XQUTE_ARRAY_INDEX, at most 2 at once
    log = tmp_path / "array.log"
    probe = (
        f'echo "start $XQUTE_ARRAY_INDEX $(date +%s.%N)" >> {log}; sleep 0.3;'
        f' echo "end $XQUTE_ARRAY_INDEX $(date +%s.%N)" >> {log}'
    )
    out = xqute("submit", "--array", "1-6%2", "--json", "--shell", probe, db=db_path)
    assert out.returncode == 0, out.stderr
    ids = json.loads(out.stdout)["ids"]
    assert len(ids) == 6
    held = [store.get_job_status(i)["state"] for i in ids]
    assert held.count("held") >= 3
    jobs = wait_final(store, ids, timeout_s=60)
    assert all(j["state"] == "completed" for j in jobs.values())
    assert [jobs[i]["name"] for i in ids] == [f"array[{k}]" for k in range(1, 7)]
    events = sorted(
        (float(t), kind)
        for kind, _, t in (ln.split() for ln in log.read_text().splitlines())
    )
    running = most = 0
    for _, kind in events:
        running += 1 if kind == "start" else -1
        most = max(most, running)
    assert most == 2
    starts = [ln.split()[1] for ln in log.read_text().splitlines() if "start" in ln]
    assert sorted(starts) == [str(k) for k in range(1, 7)]


def test_no_silent_waits(daemon, store, db_path, tmp_path):
    out = xqute("submit", "--", "true", db=db_path)  # no daemon yet
    assert out.returncode == 0 and "no worker pool serves" in out.stderr
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("true\n")
    out = subprocess.run(
        [sys.executable, "-m", "xqute", "run", str(jobs), "-s", "queue",
         "-o", f"db_path={db_path}", "-w", str(tmp_path / "wd")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1 and "no worker pool serves" in out.stderr
    assert "Traceback" not in out.stderr
    out = xqute("service", "status", db=db_path)
    assert out.returncode == 3 and "not running" in out.stdout  # LSB
    service = daemon(workers=1, cpus=1)
    out = xqute("submit", "--cpus", "4", "--", "true", db=db_path)
    assert out.returncode == 0 and "no running pool can ever run it" in out.stderr
    assert "4 cpus" in out.stderr
    out = xqute("submit", "--cwd", str(tmp_path / "nope"), "--", "true", db=db_path)
    assert out.returncode == 2 and "is not a folder" in out.stderr
    assert xqute("service", "status", db=db_path).returncode == 0
    os.kill(service.status()["pid"], signal.SIGKILL)  # its pool row stays "running"
    wait_for(lambda: not service.status()["running"], 10, "the daemon to die")
    out = xqute("service", "status", db=db_path)
    assert (
        out.returncode == 3
        and ": dead," in out.stdout
        and ": running," not in out.stdout
    )


@pytest.mark.parametrize(
    "args",
    [
        ["queue"],
        ["status", "1"],
        ["cancel", "1"],
        ["logs", "1"],
        ["workers"],
        ["service", "status"],
        ["service", "stop"],
    ],
)
def test_a_db_that_is_not_there_is_an_error_not_a_new_db(tmp_path, args):
    db = tmp_path / "typo.db"
    out = xqute(*args, db=db)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "no queue db at" in out.stderr and "Traceback" not in out.stderr
    assert not db.exists()
