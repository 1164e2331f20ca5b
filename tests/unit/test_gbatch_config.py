"""The gbatch backend without gcloud: options, the job config field by field,
job IDs, and ``list`` parsing fed output captured from the gcloud simulator
(tests/data/gbatch/: one job per state, see test names)."""

import gc
import json
import re
import subprocess
from pathlib import Path

import pytest
from cloudpathlib.local import LocalGSClient

from xqute import BackendError, ConfigError, JobOutcome, Xqute
from xqute.schedulers.gbatch import GbatchScheduler
from xqute.schedulers.gbatch.cloudjob import CloudJob
from xqute.schedulers.gbatch.config import parse_jobs_list

DATA = Path(__file__).parent.parent / "data" / "gbatch"
ID_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
BASE = {"project": "proj", "location": "us-central1"}


@pytest.fixture
def client(tmp_path):
    (tmp_path / "bkt").mkdir()
    # an explicit cache dir: the default TemporaryDirectory warns when collected
    return LocalGSClient(local_storage_dir=tmp_path, local_cache_dir=tmp_path / "c")


@pytest.fixture(autouse=True, scope="module")
def _collect_cloud_paths():
    """cloudpathlib objects have ``__del__``; collected by the cyclic GC while
    pytest parses a module, they trip a CPython 3.11.7 bug ("AST constructor
    recursion depth mismatch"): collect them after this module's tests."""
    yield
    gc.collect()


def make(client, workdir="gs://bkt/wd", **opts):
    return GbatchScheduler(workdir=workdir, **{**BASE, "gs_client": client, **opts})


def config_of(sched, index=0, **job):
    j = sched.create_job(index, ["echo", "hi"], **job)
    return sched.job_config(j)


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"project": None}, "needs a project"),
        ({"location": ""}, "needs a location"),
        ({"workdir": "/local/dir"}, "must be a gs://bucket/path URL"),
        ({"workdir": "gs://Bad_Bucket!/x"}, "not a valid bucket name"),
        ({"gs_client": object()}, "must be a cloudpathlib GS client"),
        ({"taskgroups": []}, "'taskGroups', 'allocationPolicy'"),
        ({"taskGroups": [{}, {}]}, "Batch takes exactly one"),
        ({"taskGroups": [{"taskCount": 4}]}, "must be 1"),
        ({"taskGroups": {"taskSpec": {}}}, "must be a list"),
        ({"fast_mount": "gs://bkt/ref"}, "malformed"),
        ({"fast_mount": "gs://bkt/ref:/mnt/disks/xqute_workdir"}, "two volumes"),
        ({"mounted_workdir": "rel"}, "absolute path"),
        ({"labels": ["a"]}, "must be a dict"),
    ],
)
def test_bad_options_fail_before_anything_runs(client, opts, message):
    opts = {"gs_client": client, **opts}
    workdir = opts.pop("workdir", "gs://bkt/wd")
    with pytest.raises(ConfigError, match=re.escape(message)):
        GbatchScheduler(workdir=workdir, **{**BASE, **opts})


def test_missing_project_through_the_public_api():
    with pytest.raises(ConfigError, match="needs a project"):
        Xqute(
            scheduler="gbatch", workdir="gs://bkt/w", scheduler_opts={"location": "l"}
        )


def test_constructor_does_no_io_without_a_client():
    # the default GSClient looks for credentials: that waits for start()
    sched = GbatchScheduler(workdir="gs://bkt/wd/", **BASE)
    assert sched.workdir == "gs://bkt/wd" and sched.workdir_remote == "bkt/wd"


def test_config_defaults_field_by_field(client):
    sched = make(client)
    config = config_of(sched, 7)
    (group,) = config["taskGroups"]
    assert (group["taskCount"], group["parallelism"]) == (1, 1)
    spec = group["taskSpec"]
    assert spec["runnables"] == [
        {
            "script": {
                "text": "exec /bin/bash /mnt/disks/xqute_workdir/7/job.wrapped.gbatch\n"
            }
        }
    ]
    assert spec["volumes"] == [
        {
            "gcs": {"remotePath": "bkt/wd"},
            "mountPath": "/mnt/disks/xqute_workdir",
            "mountOptions": ["--implicit-dirs"],
        }
    ]
    assert spec["environment"] == {"variables": {"XQUTE_JOB_INDEX": "7"}}
    assert spec["maxRetryCount"] == 0
    assert "maxRunDuration" not in spec and "computeResource" not in spec
    assert config["labels"] == {
        "xqute-run": sched.run_id,
        "xqute-job": "7",
        "xqute-trial": "0",
    }
    assert config["logsPolicy"] == {"destination": "CLOUD_LOGGING"}
    assert set(config) == {"taskGroups", "labels", "logsPolicy"}
    json.dumps(config)  # what --config gets


def test_config_merges_user_fields(client):
    user_runnable = {"script": {"text": "echo cleanup"}, "alwaysRun": True}
    user_volume = {"nfs": {"server": "10.0.0.2", "remotePath": "/s"}, "mountPath": "/n"}
    opts = {
        "outdir": "gs://out-bkt/results",
        "fast_mount": ["gs://ref/genomes:/mnt/ref", "gs://ref/idx:/mnt/idx"],
        "taskGroups": [
            {
                "taskCount": "1",
                "taskCountPerNode": 2,
                "taskSpec": {
                    "runnables": [user_runnable],
                    "volumes": [user_volume],
                    "environment": {
                        "variables": {"MINE": "1", "XQUTE_JOB_INDEX": "spoof"}
                    },
                    "maxRetryCount": 3,
                    "computeResource": {"cpuMilli": 500},
                },
            }
        ],
        "allocationPolicy": {
            "instances": [{"policy": {"machineType": "n1-standard-4"}}]
        },
        "labels": {"team": "genomics", "xqute-run": "spoof"},
        "logsPolicy": {"destination": "PATH", "logsPath": "/mnt/disks/xqute_outdir/l"},
        "priority": 10,
    }
    sched = make(client, **opts)
    config = config_of(sched, 1, resources={"cpus": 4, "mem": "2G"}, timeout_s=100)
    group = config["taskGroups"][0]
    spec = group["taskSpec"]
    assert spec["runnables"][1:] == [user_runnable]  # ours first, theirs after
    assert [v["mountPath"] for v in spec["volumes"]] == [
        "/mnt/disks/xqute_workdir",
        "/mnt/disks/xqute_outdir",
        "/mnt/ref",
        "/mnt/idx",
        "/n",
    ]
    assert spec["volumes"][1]["gcs"] == {"remotePath": "out-bkt/results"}
    assert spec["volumes"][2]["gcs"] == {"remotePath": "ref/genomes"}
    assert spec["volumes"][4] == user_volume
    assert spec["environment"]["variables"] == {
        "MINE": "1",
        "XQUTE_JOB_INDEX": "1",
        "XQUTE_OUTDIR": "/mnt/disks/xqute_outdir",
    }
    assert spec["maxRetryCount"] == 3  # the user's value wins
    assert spec["computeResource"] == {"cpuMilli": 500}  # over the job's resources
    assert spec["maxRunDuration"] == "165s"  # timeout + kill grace + 60 s
    assert group["taskCountPerNode"] == 2 and group["taskCount"] == 1
    assert config["allocationPolicy"] == opts["allocationPolicy"]
    assert config["labels"]["team"] == "genomics"
    assert config["labels"]["xqute-run"] == sched.run_id  # the status filter's
    assert config["logsPolicy"] == opts["logsPolicy"] and config["priority"] == 10
    # the user's options were not modified by building configs
    assert opts["taskGroups"][0]["taskSpec"]["runnables"] == [user_runnable]


def test_resources_become_compute_resource(client):
    spec = config_of(make(client), 0, resources={"cpus": 2, "mem": "3G"})
    assert spec["taskGroups"][0]["taskSpec"]["computeResource"] == {
        "cpuMilli": 2000,
        "memoryMib": 3072,
    }


def test_script_paths_and_wrapped_script_use_the_mount(client):
    sched = make(client, mounted_workdir="/mnt/w/")
    job = sched.create_job(4, ["true"])
    assert isinstance(job, CloudJob) and str(job.metadir) == "gs://bkt/wd/4"
    assert sched.script_paths(job) == ("/mnt/w", "/mnt/w/4")
    assert "export XQUTE_JOB_METADIR=/mnt/w/4" in sched.wrapped_script_text(job)


def test_a_mounted_workdir_with_a_space_runs(client, tmp_path):
    """The VM's view of the workdir, played by a local folder with a space."""
    mounted = tmp_path / "vm disk" / "xq work"
    sched = make(client, mounted_workdir=str(mounted))
    job = sched.create_job(4, ["echo", "a b"])
    (text,) = [r["script"]["text"] for r in config_of(sched, 4)["taskGroups"][0]
               ["taskSpec"]["runnables"]]  # fmt: skip
    assert text == f"exec /bin/bash '{mounted}/4/job.wrapped.gbatch'\n"
    (mounted / "4").mkdir(parents=True)
    (mounted / "4" / "job.trial").write_text("0\n")  # what submit() writes
    (mounted / "4" / "job.wrapped.gbatch").write_text(sched.wrapped_script_text(job))
    subprocess.run(["bash", "-c", text], check=True, timeout=10)
    assert (mounted / "4" / "job.rc").read_text() == "0\n"
    assert (mounted / "4" / "job.stdout").read_text() == "a b\n"


def test_job_ids_are_valid_and_unique(client):
    sched = make(client, jobname_prefix="My_Pipeline.Step 1")
    job = sched.create_job(12, ["true"])
    first = sched.batch_job_id(job)
    assert first == f"my-pipeline-step-1-{sched.run_id}-12-0" and ID_RE.match(first)
    job.trial_count = 1
    assert sched.batch_job_id(job) != first
    long = make(client, jobname_prefix="x" * 100).batch_job_id(job)
    assert len(long) <= 63 and ID_RE.match(long)


def test_commands(client):
    sched = make(client, gcloud="/opt/gcloud")
    sched._staging = Path("/stage")
    job = sched.create_job(0, ["true"])
    jid = sched.batch_job_id(job)
    where = ["--location=us-central1", "--project=proj"]
    assert sched.submit_argv(job, job.wrapped_script_file("gbatch")) == [
        "/opt/gcloud", "batch", "jobs", "submit", jid,
        f"--config=/stage/{jid}.json", *where, "--format=none",
    ]  # fmt: skip
    assert sched.status_argv([jid]) == [
        "/opt/gcloud", "batch", "jobs", "list", *where,
        f"--filter=labels.xqute-run={sched.run_id} AND NOT status.state=SUCCEEDED",
        "--format=json",
    ]  # fmt: skip
    assert sched.accounting_argv(["a-0", "b-1"])[-2].endswith("AND name:(a-0 b-1)")
    assert sched.kill_argv([jid]) == [
        "/opt/gcloud", "batch", "jobs", "delete", jid, *where, "--quiet",
    ]  # fmt: skip


def test_parse_list_captures():
    seen = parse_jobs_list((DATA / "list-all.json").read_text())
    ok, fail, timeout, running, deleted, queued = (
        seen[f"xqute-cap00001-{i}-0"] for i in range(6)
    )
    assert (ok.state, ok.outcome, ok.rc) == ("done", JobOutcome.SUCCEEDED, 0)
    assert (fail.outcome, fail.rc) == (JobOutcome.FAILED, 3)
    assert (timeout.outcome, timeout.rc) == (JobOutcome.TIMEOUT, 50005)
    assert running.state == "running" and queued.state == "pending"
    assert deleted.outcome is JobOutcome.CANCELLED
    unfinished = parse_jobs_list((DATA / "list-unfinished.json").read_text())
    assert sorted(unfinished) == [f"xqute-cap00001-{i}-0" for i in (3, 4, 5)]
    assert parse_jobs_list((DATA / "list-empty.json").read_text()) == {}
    describe = json.loads((DATA / "describe-failed.json").read_text())
    assert parse_jobs_list(json.dumps([describe]))["xqute-cap00001-1-0"].rc == 3
    with pytest.raises(BackendError, match="no JSON list"):
        parse_jobs_list("ERROR: (gcloud.batch.jobs.list) oops")


def test_reserved_exit_codes():
    def observe(code):
        event = {"description": f"... on zones/z/instances/1 with exit code {code}."}
        job = {"name": "j", "status": {"state": "FAILED", "statusEvents": [event]}}
        return parse_jobs_list(json.dumps([job]))["j"]

    assert observe(50001).outcome is JobOutcome.PREEMPTED
    assert observe(50002).outcome is JobOutcome.NODE_FAILURE
    assert observe(1).outcome is JobOutcome.FAILED


def test_cloud_job_files(client, tmp_path):
    job = CloudJob(0, ["true"], client.CloudPath("gs://bkt/wd"))
    (tmp_path / "bkt/wd/0/job.retry/1").mkdir(parents=True)
    (tmp_path / "bkt/wd/0/job.retry/1/job.rc").write_text("1\n")
    (tmp_path / "bkt/wd/0/job.rc").write_text("1\n")
    (tmp_path / "bkt/wd/0/job.script").write_text("a client's file\n")
    job.prepare_metadir()  # first trial: an older run's files go, not others'
    assert not (tmp_path / "bkt/wd/0/job.rc").exists()
    assert not (tmp_path / "bkt/wd/0/job.retry").exists()
    assert (tmp_path / "bkt/wd/0/job.script").exists()
    job.rc_file.write_text("3\n")
    job.append_stderr("a\n")
    job.append_stderr("b\n")
    assert (tmp_path / "bkt/wd/0/job.stderr").read_text() == "a\nb\n"
    job.archive_trial()
    assert (tmp_path / "bkt/wd/0/job.retry/1/job.rc").read_text() == "3\n"
    assert job.read_rc_file() is None and job.trial_count == 1
