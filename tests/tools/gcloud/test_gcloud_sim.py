"""Tests of the `gcloud batch jobs` simulator (tests/tools/gcloud/gcloud).

The simulator is run as a subprocess, as the gbatch backend will run it, with
a temporary state directory and a temporary buckets directory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.gbatch

GCLOUD = Path(__file__).with_name("gcloud")
PROJECT = "test-proj"
LOCATION = "us-central1"
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?Z$")


sys.path.insert(0, str(GCLOUD.parent))
from gbatch_sim import common as sim_common  # noqa: E402
from gbatch_sim import errors as sim_errors  # noqa: E402
from gbatch_sim import filters as sim_filters  # noqa: E402


class Sim:
    """Runs the simulator CLI against a private state dir."""

    def __init__(self, tmp_path: Path):
        self.state = tmp_path / "state"
        self.buckets = tmp_path / "buckets"
        self.buckets.mkdir()
        (self.buckets / "bucket").mkdir()
        self.tmp = tmp_path
        self.env = {
            **os.environ,
            "GBATCH_SIM_DIR": str(self.state),
            "GBATCH_SIM_BUCKETS_DIR": str(self.buckets),
            "GBATCH_SIM_QUEUE_DELAY_S": "0.05",
            "GBATCH_SIM_SCHEDULE_DELAY_S": "0.05",
            "GBATCH_SIM_DELETE_DELAY_S": "0.3",
            "GBATCH_SIM_KILL_GRACE_S": "0.5",
        }
        for var in (
            "CLOUDSDK_CORE_PROJECT",
            "CLOUDSDK_BATCH_LOCATION",
            "GBATCH_SIM_MOUNT_MODE",
        ):
            self.env.pop(var, None)

    def run(self, *args, input=None, env=None, loc=True):
        argv = [sys.executable, str(GCLOUD), *args]
        if loc:
            argv += ["--project", PROJECT, "--location", LOCATION]
        return subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            timeout=30,
            env={**self.env, **(env or {})},
        )

    def submit(self, name, config, *extra, check=True, env=None):
        res = self.run(
            "batch",
            "jobs",
            "submit",
            name,
            "--config",
            "-",
            "--format=json",
            *extra,
            input=json.dumps(config),
            env=env,
        )
        if check:
            assert res.returncode == 0, res.stderr
        return res

    def describe(self, name):
        res = self.run("batch", "jobs", "describe", name, "--format=json")
        return json.loads(res.stdout) if res.returncode == 0 else None

    def list(self, filt=None, fmt="json"):
        args = ["batch", "jobs", "list", f"--format={fmt}"]
        if filt is not None:
            args.append(f"--filter={filt}")
        res = self.run(*args, loc=False, env={"CLOUDSDK_CORE_PROJECT": PROJECT})
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout) if fmt == "json" else res.stdout

    def wait_state(self, name, states, timeout=10.0):
        """Wait for a state by reading the stored resource (cheap), then describe."""
        path = self.state / "jobs" / PROJECT / LOCATION / name / "job.json"
        deadline = time.monotonic() + timeout
        job = None
        while time.monotonic() < deadline:
            try:
                job = json.loads(path.read_text())
            except (OSError, ValueError):
                job = None
            if job and job["status"]["state"] in states:
                described = self.describe(name)
                assert described is not None and described["status"]["state"] in states
                return described
            time.sleep(0.03)
        raise AssertionError(f"{name} not in {states} after {timeout}s: {job}")

    def wait_gone(self, name, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.describe(name) is None:
                return
            time.sleep(0.1)
        raise AssertionError(f"{name} still visible after {timeout}s")


def leftover_processes(marker: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
            with open(f"/proc/{pid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        # Runnables run in a task dir under the state dir; children inherit it.
        if (marker in cmd or cwd.startswith(marker)) and state != "Z":
            found.append(f"{pid}: {cmd}")
    return found


@pytest.fixture
def gsim(tmp_path):
    s = Sim(tmp_path)
    yield s
    # Kill whatever a test left running, then make sure nothing survived.
    if (s.state / "jobs").exists():
        res = s.run("simulator", "reap", loc=False)
        assert res.returncode == 0, res.stderr
    assert leftover_processes(str(tmp_path)) == []


def script_job(text, **spec):
    return {
        "taskGroups": [
            {"taskSpec": {"runnables": [{"script": {"text": text}}], **spec}}
        ]
    }


def gcs_volume(remote="bucket/wd", mount="/mnt/disks/xqute_workdir"):
    return {"gcs": {"remotePath": remote}, "mountPath": mount}


# --------------------------------------------------------------------------- #
def test_submit_describe_list_output_shapes(gsim):
    config = script_job("echo hi")
    config["labels"] = {"xqute-run": "r1"}
    res = gsim.submit("shape-job", config)
    job = json.loads(res.stdout)
    name = f"projects/{PROJECT}/locations/{LOCATION}/jobs/shape-job"
    assert job["name"] == name
    assert job["uid"].startswith("shape-job-")
    assert f"Job {job['uid']} was successfully submitted." in res.stderr
    assert job["status"]["state"] == "QUEUED"
    assert job["labels"] == {"xqute-run": "r1"}
    assert job["taskGroups"][0]["name"] == name + "/taskGroups/group0"
    assert job["taskGroups"][0]["taskCount"] == "1"
    assert TS_RE.match(job["createTime"]) and TS_RE.match(job["updateTime"])

    done = gsim.wait_state("shape-job", {"SUCCEEDED", "FAILED"})
    assert done["status"]["state"] == "SUCCEEDED"
    events = done["status"]["statusEvents"]
    assert [e["description"] for e in events] == [
        f"Job state is set from QUEUED to SCHEDULED for job {name}.",
        f"Job state is set from SCHEDULED to RUNNING for job {name}.",
        f"Job state is set from RUNNING to SUCCEEDED for job {name}.",
    ]
    assert all(
        e["type"] == "STATUS_CHANGED" and TS_RE.match(e["eventTime"]) for e in events
    )
    assert done["status"]["taskGroups"]["group0"]["counts"] == {"SUCCEEDED": "1"}
    assert done["uid"] == job["uid"]

    listed = gsim.list()
    assert [j["name"] for j in listed] == [name]
    assert listed[0] == done
    table = gsim.list(fmt="table(name, name.segment(3):label=LOCATION, status.state)")
    assert table.split("\n")[0].split() == ["NAME", "LOCATION", "STATE"]
    assert (
        "SUCCEEDED"
        in gsim.run(
            "batch", "jobs", "list", loc=False, env={"CLOUDSDK_CORE_PROJECT": PROJECT}
        ).stdout
    )
    # Full resource names are accepted instead of --project/--location.
    res = gsim.run(
        "batch", "jobs", "describe", name, "--format=value(status.state)", loc=False
    )
    assert res.stdout == "SUCCEEDED\n"


def test_job_writes_through_mounted_volume(gsim):
    mount_mode = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"], capture_output=True
    )
    config = script_job(
        "#!/bin/bash\n"
        "set -e\n"
        "mkdir -p /mnt/disks/xqute_workdir/0\n"
        'echo "$XQUTE_VAR $BATCH_TASK_INDEX $BATCH_TASK_COUNT" > '
        "/mnt/disks/xqute_workdir/0/job.stdout\n"
        "echo 0 > /mnt/disks/xqute_workdir/0/job.rc\n",
        volumes=[gcs_volume()],
        environment={"variables": {"XQUTE_VAR": "hello"}},
    )
    gsim.submit("mount-job", config)
    job = gsim.wait_state("mount-job", {"SUCCEEDED", "FAILED"})
    assert job["status"]["state"] == "SUCCEEDED", job
    wd = gsim.buckets / "bucket" / "wd" / "0"
    assert (wd / "job.rc").read_text() == "0\n"
    assert (wd / "job.stdout").read_text() == "hello 0 1\n"
    if mount_mode.returncode == 0:  # private mount namespace: host path untouched
        assert not Path("/mnt/disks/xqute_workdir/0/job.rc").exists()


def test_symlink_mount_mode_and_script_path(gsim):
    mount = str(gsim.tmp / "vm" / "mnt" / "wd")
    (gsim.buckets / "bucket" / "scripts").mkdir()
    script = gsim.buckets / "bucket" / "scripts" / "job.sh"
    script.write_text("#!/bin/sh\necho via-path > " + mount + "/out.txt\n")
    script.chmod(0o755)
    config = {
        "taskGroups": [
            {
                "taskSpec": {
                    "runnables": [{"script": {"path": mount + "/scripts/job.sh"}}],
                    "volumes": [gcs_volume("bucket", mount)],
                }
            }
        ]
    }
    gsim.submit("symlink-job", config, env={"GBATCH_SIM_MOUNT_MODE": "symlink"})
    job = gsim.wait_state("symlink-job", {"SUCCEEDED", "FAILED"})
    assert job["status"]["state"] == "SUCCEEDED", job
    assert (gsim.buckets / "bucket" / "out.txt").read_text() == "via-path\n"
    assert os.path.islink(mount)


def test_failed_job_reports_exit_code(gsim):
    gsim.submit("fail-job", script_job("echo oops >&2; exit 7"))
    job = gsim.wait_state("fail-job", {"SUCCEEDED", "FAILED"})
    assert job["status"]["state"] == "FAILED"
    last = job["status"]["statusEvents"][-1]
    assert last["description"].startswith(
        f"Job state is set from RUNNING to FAILED for job projects/{PROJECT}/locations/"
        f"{LOCATION}/jobs/fail-job."
    )
    assert re.search(r"with exit code 7\.\"$", last["description"])
    assert last["taskExecution"] == {"exitCode": 7}
    assert last["taskState"] == "FAILED"
    assert job["status"]["taskGroups"]["group0"]["counts"] == {"FAILED": "1"}


def test_missing_bucket_fails_the_task(gsim):
    gsim.submit(
        "nobucket", script_job("true", volumes=[gcs_volume("no-such-bucket/x")])
    )
    job = gsim.wait_state("nobucket", {"SUCCEEDED", "FAILED"})
    assert "with exit code 50000." in job["status"]["statusEvents"][-1]["description"]


def test_retries_and_max_run_duration(gsim):
    counter = "/mnt/disks/xqute_workdir/attempts"
    retry = script_job(
        f'echo "$BATCH_TASK_RETRY_ATTEMPT" >> {counter}\n'
        f'[ "$(wc -l < {counter})" -ge 3 ]\n',
        volumes=[gcs_volume()],
        maxRetryCount=2,
    )
    gsim.submit("retry-job", retry)
    timeout = script_job("sleep 30", maxRunDuration="0.5s")
    start = time.monotonic()
    gsim.submit("timeout-job", timeout)
    job = gsim.wait_state("retry-job", {"SUCCEEDED", "FAILED"})
    assert job["status"]["state"] == "SUCCEEDED", job
    assert (gsim.buckets / "bucket" / "wd" / "attempts").read_text() == "0\n1\n2\n"
    job = gsim.wait_state("timeout-job", {"SUCCEEDED", "FAILED"})
    assert time.monotonic() - start < 8
    assert job["status"]["state"] == "FAILED"
    assert (
        "due to task runs over the maximum runtime with exit code 50005."
        in (job["status"]["statusEvents"][-1]["description"])
    )


def test_delete_kills_process_group_then_job_disappears(gsim):
    pids = gsim.buckets / "bucket" / "wd" / "pids"
    config = script_job(
        "sleep 300 &\necho $! > /mnt/disks/xqute_workdir/pids\n"
        "echo $$ >> /mnt/disks/xqute_workdir/pids\nwait\n",
        volumes=[gcs_volume()],
    )
    gsim.submit("del-job", config)
    gsim.wait_state("del-job", {"RUNNING"})
    deadline = time.monotonic() + 5
    while not (pids.exists() and len(pids.read_text().split()) == 2):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    procs = [int(p) for p in pids.read_text().split()]

    res = gsim.run("batch", "jobs", "delete", "del-job", "--quiet")
    assert res.returncode == 0, res.stderr
    name = f"projects/{PROJECT}/locations/{LOCATION}/jobs/del-job"
    assert res.stderr.strip() == f"Job {name} deletion is in progress"
    job = gsim.describe("del-job")
    assert job is None or job["status"]["state"] == "DELETION_IN_PROGRESS"
    deadline = time.monotonic() + 5
    while any(sim_common.pid_alive(p) for p in procs):
        assert time.monotonic() < deadline, "script processes survived delete"
        time.sleep(0.05)

    gsim.wait_gone("del-job")
    assert gsim.list() == []
    res = gsim.run("batch", "jobs", "describe", "del-job")
    assert res.returncode == 1
    assert res.stderr.strip() == (
        f'ERROR: (gcloud.batch.jobs.describe) NOT_FOUND: Resource "{name}" was not '
        "found"
    )
    res = gsim.run("batch", "jobs", "delete", "del-job", "--quiet")
    assert res.returncode == 1
    assert res.stderr.strip() == (
        "ERROR: (gcloud.batch.jobs.delete) ResponseError: code=404, "
        f'message=Resource "{name}" was not found'
    )
    # The name can be reused once the job is gone.
    gsim.submit("del-job", script_job("true"))
    assert gsim.wait_state("del-job", {"SUCCEEDED"})


def test_delete_escalates_to_sigkill_and_survives_dead_runner(gsim):
    # A script ignoring SIGTERM is SIGKILLed after GBATCH_SIM_KILL_GRACE_S;
    # a job whose runner died is still cleaned up by `delete` (SIGKILL).
    gsim.submit("stubborn", script_job("trap '' TERM; sleep 301 & sleep 302"))
    gsim.submit("orphaned", script_job("sleep 303"))
    groups = {}
    deadline = time.monotonic() + 5
    for name in ("stubborn", "orphaned"):
        sim_file = gsim.state / "jobs" / PROJECT / LOCATION / name / "sim.json"
        while not json.loads(sim_file.read_text())["pgids"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        state = json.loads(sim_file.read_text())
        groups[name] = [pgid for pgid, _ in state["pgids"].values()]
        if name == "orphaned":
            os.kill(state["runnerPid"], 9)
    in_groups = lambda: [  # noqa: E731
        p for p in leftover_processes(str(gsim.tmp)) if "__sim-runner" not in p
    ]
    sleeps = lambda: sorted(  # noqa: E731
        p.split(": ", 1)[1].strip() for p in in_groups() if ": sleep" in p
    )
    deadline = time.monotonic() + 5
    while sleeps() != ["sleep 301", "sleep 302", "sleep 303"]:
        assert time.monotonic() < deadline, in_groups()
        time.sleep(0.05)
    for name in ("stubborn", "orphaned"):
        assert gsim.run("batch", "jobs", "delete", name, "--quiet").returncode == 0
    deadline = time.monotonic() + 5
    while any(sim_common.group_alive(g) for gs in groups.values() for g in gs):
        assert time.monotonic() < deadline, in_groups()
        time.sleep(0.05)
    assert in_groups() == []
    gsim.wait_gone("stubborn")
    gsim.wait_gone("orphaned")


def test_delete_finished_and_queued_jobs(gsim):
    gsim.submit("done-job", script_job("true"))
    gsim.wait_state("done-job", {"SUCCEEDED"})
    slow = {"GBATCH_SIM_QUEUE_DELAY_S": "30"}
    gsim.submit("queued-job", script_job("touch /should-not-run"), env=slow)
    for name in ("done-job", "queued-job"):
        res = gsim.run("batch", "jobs", "delete", name, "--quiet")
        assert res.returncode == 0, res.stderr
    assert {j["status"]["state"] for j in gsim.list()} <= {"DELETION_IN_PROGRESS"}
    gsim.wait_gone("done-job")
    gsim.wait_gone("queued-job")
    assert gsim.list() == []


@pytest.mark.parametrize(
    "name, config, expected",
    [
        (
            "ok-name",
            {
                "taskGroups": [
                    {"taskSpec": {"runnables": [{"script": {"text": "true"}}]}}
                ],
                "bogusField": 1,
            },
            "INVALID_ARGUMENT: Invalid JSON payload received. Unknown name "
            "\"bogusField\" at 'job': Cannot find field.",
        ),
        (
            "ok-name",
            script_job("true", maxRetries=3),
            "Unknown name \"maxRetries\" at 'job.task_groups[0].task_spec'",
        ),
        (
            "ok-name",
            {
                "taskGroups": [
                    {
                        "taskSpec": {"runnables": [{"script": {"text": "true"}}]},
                        "taskCount": "abc",
                    }
                ]
            },
            "Invalid value at 'job.task_groups[0].task_count' (TYPE_INT64), \"abc\"",
        ),
        (
            "ok-name",
            script_job("true", maxRunDuration=3600),
            "Invalid value at 'job.task_groups[0].task_spec.max_run_duration' "
            "(type.googleapis.com/google.protobuf.Duration), 3600",
        ),
        (
            "ok-name",
            script_job(
                "true",
                volumes=[
                    {
                        "gcs": {"remotePath": "b1/x"},
                        "nfs": {"server": "s", "remotePath": "/x"},
                        "mountPath": "/mnt/x",
                    }
                ],
            ),
            "job.task_groups[0].task_spec.volumes[0]: exactly one of gcs, nfs or "
            "device_name must be set.",
        ),
        (
            "ok-name",
            script_job("true", volumes=[{"gcs": {"remotePath": "b1/x"}}]),
            "job.task_groups[0].task_spec.volumes[0].mount_path: required field is "
            "missing.",
        ),
        (
            "ok-name",
            script_job("true", maxRetryCount=11),
            "max_retry_count: must be in [0, 10], got 11.",
        ),
        (
            "ok-name",
            {**script_job("true"), "labels": {"Bad": "x"}},
            "invalid label key 'Bad'",
        ),
        ("ok-name", {"taskGroups": []}, "exactly one TaskGroup is supported, got 0."),
        (
            "ok-name",
            {
                "taskGroups": [
                    {
                        "taskSpec": {
                            "runnables": [{"script": {"text": "true", "path": "/x"}}]
                        }
                    }
                ]
            },
            "runnables[0].script: exactly one of path or text must be set.",
        ),
        ("Upper", script_job("true"), 'INVALID_ARGUMENT: job_id "Upper" is invalid'),
        ("1abc", script_job("true"), 'job_id "1abc" is invalid'),
        ("trailing-", script_job("true"), 'job_id "trailing-" is invalid'),
        (
            "a" * 64,
            script_job("true"),
            "is invalid: a job ID must be at most 63 characters",
        ),
        (
            "ok-name",
            {
                "taskGroups": [
                    {
                        "taskSpec": {
                            "runnables": [{"container": {"imageUri": "busybox"}}]
                        }
                    }
                ]
            },
            "UNIMPLEMENTED: [gcloud batch simulator] "
            "taskGroups[0].taskSpec.runnables[0] is a container runnable: "
            "the simulator does not run container runnables",
        ),
    ],
)
def test_validation_errors(gsim, name, config, expected):
    res = gsim.submit(name, config, check=False)
    assert res.returncode == 1
    assert res.stderr.startswith("ERROR: (gcloud.batch.jobs.submit) "), res.stderr
    assert expected in res.stderr
    assert res.stdout == ""
    assert not (gsim.state / "jobs" / PROJECT / LOCATION / name).exists()


def test_cli_errors(gsim):
    res = gsim.run("batch", "jobs", "list", "--bogus", "x", loc=False)
    assert res.returncode == 2
    assert res.stderr.startswith(
        "ERROR: (gcloud.batch.jobs.list) unrecognized arguments: --bogus x"
    )
    res = gsim.run("batch", "jobs", "submit", "j1", "--script-text", "true", loc=False)
    assert (
        res.returncode == 1
        and "The required property [project] is not currently set." in res.stderr
    )
    res = gsim.run("batch", "jobs", "describe", "j1", "--project", "p", loc=False)
    assert res.returncode == 1 and "Failed to find attribute [location]" in res.stderr
    res = gsim.run("batch", "jobs", "frobnicate", loc=False)
    assert res.returncode == 2 and "Invalid choice: 'frobnicate'" in res.stderr
    res = gsim.run("batch", "jobs", "list", "--format=csv(name)")
    assert (
        res.returncode == 1
        and "Format [csv] is not supported by the simulator" in res.stderr
    )
    res = gsim.run(
        "batch", "jobs", "list", "--filter=labels.a=1 AND labels.b=2 OR labels.c=3"
    )
    assert res.returncode == 1 and "Parenthesis grouping is required" in res.stderr
    gsim.submit("dup", script_job("true"))
    res = gsim.submit("dup", script_job("true"), check=False)
    assert res.returncode == 1
    assert res.stderr.strip() == (
        "ERROR: (gcloud.batch.jobs.submit) ALREADY_EXISTS: Resource "
        f'"projects/{PROJECT}/locations/{LOCATION}/jobs/dup" already exists'
    )
    calls = [
        json.loads(line)
        for line in (gsim.state / "calls.jsonl").read_text().splitlines()
    ]
    assert calls[0]["argv"][:4] == ["batch", "jobs", "list", "--bogus"]
    assert calls[0]["exitCode"] == 2


def test_list_filters(gsim):
    slow = {"GBATCH_SIM_QUEUE_DELAY_S": "30"}  # stay QUEUED; jobs are not run
    for i, (run, extra) in enumerate(
        [("a", {}), ("a", {}), ("b", {}), ("b", {"team": "x"})]
    ):
        config = script_job("true")
        config["labels"] = {"xqute-run": run, "idx": str(i), **extra}
        gsim.submit(f"job-{run}-{i}", config, env=slow)
    names = lambda filt: sorted(j["name"].rsplit("/", 1)[1] for j in gsim.list(filt))  # noqa: E731
    prefix = f"projects/{PROJECT}/locations/{LOCATION}/jobs/"
    assert names("labels.xqute-run=a") == ["job-a-0", "job-a-1"]
    assert names("labels.xqute-run:b") == ["job-b-2", "job-b-3"]
    assert names("labels.xqute-run=A") == [
        "job-a-0",
        "job-a-1",
    ]  # case-insensitive like gcloud
    assert names(f"name={prefix}job-a-1") == ["job-a-1"]
    assert names("name=job-a-1") == []  # '=' matches the whole value
    assert names("name:job-a-1") == ["job-a-1"]  # ':' matches a substring
    assert names("name:*-3") == ["job-b-3"]
    assert names(f"name=({prefix}job-a-0 {prefix}job-b-3)") == ["job-a-0", "job-b-3"]
    assert names("labels.xqute-run=a AND NOT labels.idx=1") == ["job-a-0"]
    assert names("(labels.xqute-run=a OR labels.xqute-run=b) AND -labels.team:*") == [
        "job-a-0",
        "job-a-1",
        "job-b-2",
    ]
    assert names("labels.xqute-run=b labels.team=x") == ["job-b-3"]  # implicit AND
    assert names("status.state=QUEUED AND labels.xqute-run=b") == ["job-b-2", "job-b-3"]
    assert names("status.state=RUNNING") == []
    assert names("labels.idx>=2 AND labels.idx!=3") == ["job-b-2"]
    assert names("name~job-a-[01]$") == ["job-a-0", "job-a-1"]
    assert names(None) == ["job-a-0", "job-a-1", "job-b-2", "job-b-3"]
    res = gsim.run(
        "batch",
        "jobs",
        "list",
        "--format=json(name,status.state)",
        "--limit=1",
        "--sort-by=~name",
        "--filter=labels.xqute-run=a",
    )
    assert json.loads(res.stdout) == [
        {"name": prefix + "job-a-1", "status": {"state": "QUEUED"}}
    ]
    res = gsim.run(
        "batch",
        "jobs",
        "list",
        "--format=value(name.basename(),labels.idx)",
        "--filter=labels.xqute-run=b",
    )
    assert res.stdout == "job-b-2\t2\njob-b-3\t3\n"


def test_filter_semantics_unit():
    job = {
        "name": "projects/p/locations/l/jobs/Abc-1",
        "labels": {"k": "v-1"},
        "n": "5",
    }
    match = lambda f: sim_filters.compile_filter(f).evaluate(job)  # noqa: E731
    assert match("name:abc")
    assert match("name:projects*")
    assert not match("name:abc*")
    assert match("name:*abc-1")
    assert match("name:p*1")
    assert match("labels:k")  # ':' on a dict matches keys and values
    assert match("labels.k:*") and not match("labels.missing:*")
    assert match("-labels.missing:*")
    assert match("n=5") and match("n>4") and not match("n<5")
    assert match("labels.k=(x v-1)")
    assert match('labels.k="v-1"')
    assert match("NOT (labels.k=x OR labels.k=y)")
    with pytest.raises(sim_errors.CliError):
        sim_filters.compile_filter("(labels.k=x")


def test_concurrent_submits(gsim):
    results = {}

    def submit(key, name):
        results[key] = gsim.submit(name, script_job("true"), check=False)

    threads = [threading.Thread(target=submit, args=(i, f"par-{i}")) for i in range(6)]
    threads += [
        threading.Thread(target=submit, args=(f"same-{i}", "same-name"))
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(results[i].returncode == 0 for i in range(6)), [
        results[i].stderr for i in range(6)
    ]
    same = [results[f"same-{i}"] for i in range(4)]
    assert sum(r.returncode == 0 for r in same) == 1
    assert all("ALREADY_EXISTS" in r.stderr for r in same if r.returncode != 0)
    names = sorted(j["name"].rsplit("/", 1)[1] for j in gsim.list())
    assert names == sorted([f"par-{i}" for i in range(6)] + ["same-name"])
    for name in names:
        assert (
            gsim.wait_state(name, {"SUCCEEDED", "FAILED"})["status"]["state"]
            == "SUCCEEDED"
        )


def test_task_count_parallelism_and_runnable_options(gsim):
    config = {
        "taskGroups": [
            {
                "taskCount": 3,
                "parallelism": 2,
                "taskSpec": {
                    "runnables": [
                        {"script": {"text": "exit 5"}, "ignoreExitStatus": True},
                        {
                            "script": {
                                "text": 'echo "$BATCH_TASK_INDEX/$BATCH_TASK_COUNT" > '
                                "/mnt/disks/xqute_workdir/task-$BATCH_TASK_INDEX"
                            }
                        },
                    ],
                    "volumes": [gcs_volume()],
                },
            }
        ]
    }
    gsim.submit("multi-task", config)
    job = gsim.wait_state("multi-task", {"SUCCEEDED", "FAILED"})
    assert job["status"]["state"] == "SUCCEEDED", job
    assert job["status"]["taskGroups"]["group0"]["counts"] == {"SUCCEEDED": "3"}
    wd = gsim.buckets / "bucket" / "wd"
    assert sorted(p.read_text() for p in wd.glob("task-*")) == [
        "0/3\n",
        "1/3\n",
        "2/3\n",
    ]


def test_submit_flags_and_yaml_default_output(gsim):
    res = gsim.run(
        "batch",
        "jobs",
        "submit",
        "flag-job",
        "--script-text",
        "echo hi",
        "--machine-type",
        "e2-small",
        "--priority",
        "5",
    )
    assert res.returncode == 0, res.stderr
    assert "name: projects/test-proj/locations/us-central1/jobs/flag-job" in res.stdout
    assert "machineType: e2-small" in res.stdout
    job = gsim.describe("flag-job")
    assert job["priority"] == "5"
    assert job["taskGroups"][0]["taskSpec"]["runnables"] == [
        {"script": {"text": "echo hi"}}
    ]
    res = gsim.run(
        "batch",
        "jobs",
        "submit",
        "--job-prefix",
        "pre",
        "--script-text",
        "true",
        "--format=value(name.basename())",
    )
    assert res.returncode == 0, res.stderr
    assert re.fullmatch(r"pre-\d{8}-\d{6}\n", res.stdout)
