"""The Slurm backend without a cluster: directives in the wrapped script,
resources, and every parser fed output captured from a real Slurm."""

import pytest
from captured import read_capture

from xqute import CommandFailed, ConfigError, JobOutcome, JobStatus, Xqute
from xqute.outcome import Observation
from xqute.schedulers.slurm import (
    SQUEUE_FORMAT,
    SlurmScheduler,
    parse_sacct,
    parse_squeue,
)

DONE = "done"


def slurm(tmp_path, **opts):
    return SlurmScheduler(workdir=tmp_path, **opts)


def header(sched, **job_kwargs):
    job = sched.create_job(3, ["true"], **job_kwargs)
    return sched.script_header(job)


def test_options_become_directives(tmp_path):
    sched = slurm(
        tmp_path,
        partition="compute",
        time="01:00:00",
        mem="2G",
        **{"cpus-per-task": 1, "gres": "gpu:1", "nodes": 1, "job-name": "myjob"},
        sbatch="/usr/bin/sbatch",
    )
    lines = header(sched)
    assert lines[:7] == [
        '#SBATCH --partition="compute"',
        '#SBATCH --time="01:00:00"',
        '#SBATCH --mem="2G"',
        '#SBATCH --cpus-per-task="1"',
        '#SBATCH --gres="gpu:1"',
        '#SBATCH --nodes="1"',
        '#SBATCH --job-name="myjob"',
    ]
    assert f'#SBATCH --output="{tmp_path}/3/job.stdout"' in lines
    assert f'#SBATCH --error="{tmp_path}/3/job.stderr"' in lines
    assert '#SBATCH --open-mode="append"' in lines
    assert sched.tool("sbatch") == "/usr/bin/sbatch"
    assert not any("sbatch" in line.split("=")[0] for line in lines)


def test_default_name_prefixes_and_percent_in_paths(tmp_path):
    workdir = tmp_path / "100%"
    sched = SlurmScheduler(
        workdir=workdir, jobname_prefix="run", sbatch_partition="a", slurm_qos="b"
    )
    lines = header(sched)
    assert '#SBATCH --job-name="run-3"' in lines
    assert '#SBATCH --partition="a"' in lines and '#SBATCH --qos="b"' in lines
    assert f'#SBATCH --output="{tmp_path}/100%%/3/job.stdout"' in lines


def test_old_spellings_warn_and_work(tmp_path):
    with pytest.warns(DeprecationWarning):
        xqute = Xqute(
            "slurm",
            workdir=str(tmp_path),
            scheduler_forks=100,
            sbatch_partition="1-day",
            slurm_time="01:00:00",
        )
    assert xqute.forks == 100
    lines = header(xqute.scheduler)
    assert '#SBATCH --partition="1-day"' in lines
    assert '#SBATCH --time="01:00:00"' in lines


def test_generic_resources_and_explicit_options_win(tmp_path):
    res = {"cpus": 4, "mem": "3G", "gpus": 2, "time": 61}
    lines = header(slurm(tmp_path), resources=res)
    assert lines[:4] == [
        '#SBATCH --cpus-per-task="4"',
        '#SBATCH --mem="3072M"',
        '#SBATCH --gres="gpu:2"',
        '#SBATCH --time="2"',  # whole minutes, rounded up
    ]
    lines = header(slurm(tmp_path, c=1, mem_per_cpu="1G", gpus=1, t="5"), resources=res)
    assert not any(
        line.startswith(("#SBATCH --cpus", "#SBATCH --mem=", "#SBATCH --gres"))
        for line in lines
    )
    assert '#SBATCH -t "5"' in lines and '#SBATCH -c "1"' in lines


def test_hostile_values_are_quoted_or_rejected(tmp_path):
    sched = slurm(tmp_path, jobname_prefix='x" --time=1 $(touch /tmp/p) #')
    assert '#SBATCH --job-name="x\\" --time=1 $(touch /tmp/p) #-3"' in header(sched)
    with pytest.raises(ConfigError, match="'comment'"):
        slurm(tmp_path, comment="a\ntouch /tmp/pwned")
    with pytest.raises(ConfigError, match="'job-name'"):
        slurm(tmp_path, jobname_prefix="a\nb")
    with pytest.raises(ConfigError, match="given twice"):
        slurm(tmp_path, partition="a", sbatch_partition="b")


def test_array_option_is_ours(tmp_path):
    assert slurm(tmp_path, array=True, forks=50).array_size == 50
    assert slurm(tmp_path, array=10, forks=50).array_size == 10
    assert slurm(tmp_path, array=5000, forks=5000).array_size == 1000
    with pytest.raises(ConfigError, match="array"):
        slurm(tmp_path, array="yes")


def test_parse_submit():
    sched = SlurmScheduler()
    assert sched.parse_submit(read_capture("slurm/sbatch_parsable").result) == "24"
    cap = read_capture("slurm/sbatch_parsable_array")
    assert sched.parse_submit(cap.result) == "28"
    assert sched.parse_array_submit(cap.result, [0, 1]) == ["28_0", "28_1"]
    with pytest.raises(Exception, match="no job id"):
        sched.parse_submit(read_capture("slurm/sbatch_plain").result)


def test_transient_submit_errors():
    sched = SlurmScheduler()

    def transient(name):
        cap = read_capture(f"slurm/{name}")
        return sched.is_transient(CommandFailed(["sbatch"], cap.rc, "", cap.stderr))

    assert transient("sbatch_controller_down")
    assert not transient("sbatch_bad_partition")
    assert not transient("sbatch_bad_option")
    assert not transient("sbatch_missing_script")


def outcomes(observations):
    return {
        jid: (o.state, o.outcome.value if o.outcome else None)
        for jid, o in observations.items()
    }


@pytest.mark.parametrize("name", ["squeue_all_states", "squeue_all_states_r"])
def test_parse_squeue_states(name):
    ids = "24 25 26 27 28_1 28_2 28_3 32 31 35 36_1 36_2 36_3 38 40 41 42 23 999999"
    cap = read_capture(f"slurm/{name}")
    obs = parse_squeue(cap.stdout, ids.split(), cap.option("-o"))
    assert outcomes(obs) == {
        "24": (DONE, "succeeded"),
        "25": (DONE, "failed"),
        "26": (DONE, "failed"),
        "27": (DONE, "failed"),
        "28_1": (DONE, "succeeded"),
        "28_2": (DONE, "failed"),
        "28_3": (DONE, "succeeded"),
        "32": (DONE, "cancelled"),
        "42": (DONE, "cancelled"),
        "31": ("running", None),
        "35": ("running", None),
        "23": ("running", None),
        "36_1": ("running", None),
        "36_2": ("pending", None),  # folded as 36_[2-3%1] without -r
        "36_3": ("pending", None),
        "38": ("pending", None),
        "40": ("pending", None),
        "41": ("pending", None),
    }
    assert obs["24"].rc == 0
    assert "JobLaunchFailure" in obs["26"].reason and obs["25"].reason is None


def squeue(name, ids):
    cap = read_capture(f"slurm/{name}")
    return parse_squeue(cap.stdout, ids, cap.option("-o"))


def test_parse_squeue_timeout_and_unknown_ids():
    sched = SlurmScheduler()
    assert outcomes(squeue("squeue_timeout_and_purged", ["23"])) == {
        "23": (DONE, "timeout")
    }
    assert outcomes(squeue("squeue_array_task_ids", ["28_2", "36_3"])) == {
        "28_2": (DONE, "failed"),
        "36_3": ("pending", None),
    }
    for name in ("squeue_unknown_single", "squeue_unknown_two", "squeue_purged_single"):
        sched.check_status(read_capture(f"slurm/{name}").result)  # not an error
        assert squeue(name, ["999"]) == {}
    with pytest.raises(CommandFailed, match="Unable to contact"):
        sched.check_status(read_capture("slurm/squeue_controller_down").result)
    # the command the backend runs is the format the parser reads by default
    assert sched.status_argv(["1"])[-1] == SQUEUE_FORMAT


@pytest.mark.parametrize(
    ("state", "outcome"),
    [
        ("OUT_OF_MEMORY", JobOutcome.OUT_OF_MEMORY),
        ("NODE_FAIL", JobOutcome.NODE_FAILURE),
        ("BOOT_FAIL", JobOutcome.NODE_FAILURE),
        ("PREEMPTED", JobOutcome.PREEMPTED),
        ("DEADLINE", JobOutcome.TIMEOUT),
        ("REVOKED", JobOutcome.CANCELLED),
    ],
)
def test_states_not_seen_on_the_test_cluster(state, outcome):
    """Crafted lines: these states cannot be provoked on a single-node cluster
    without cgroups, but a real one reports them."""
    obs = parse_squeue(f"7|{state}|None\n", ["7"])["7"]
    assert (obs.state, obs.outcome) == (DONE, outcome)
    obs = parse_sacct(f"7|{state}|0:9|None\n", ["7"])["7"]
    assert (obs.state, obs.outcome, obs.rc) == (DONE, outcome, 137)


def test_unknown_and_transitional_states_keep_waiting():
    for state in ("COMPLETING", "SUSPENDED", "SOMETHING_NEW"):
        assert parse_squeue(f"7|{state}|None\n", ["7"])["7"].state == "running"
    for state in ("CONFIGURING", "REQUEUED"):
        assert parse_squeue(f"7|{state}|None\n", ["7"])["7"].state == "pending"


def sacct(name, ids):
    cap = read_capture(f"slurm/{name}")
    return parse_sacct(cap.stdout, ids, cap.option("-o").split(","))


def test_parse_sacct_outcomes():
    ids = ["23", "24", "25", "26", "27", "28_1", "28_2", "28_3", "31", "32"]
    ids += ["35", "36_1", "36_2", "36_3", "38", "40", "42"]
    obs = sacct("sacct_batch_all", ids)
    assert (obs["24"].outcome, obs["24"].rc) == (JobOutcome.SUCCEEDED, 0)
    assert (obs["25"].outcome, obs["25"].rc) == (JobOutcome.FAILED, 3)
    assert (obs["26"].outcome, obs["26"].rc) == (JobOutcome.FAILED, 137)
    assert obs["23"].outcome is JobOutcome.TIMEOUT
    assert obs["32"].outcome is JobOutcome.CANCELLED  # "CANCELLED by 0"
    # failed with ExitCode 0:0 (the batch step got the signal): no rc, never 0
    assert obs["23"].rc is None and obs["32"].rc is None and obs["42"].rc is None
    assert obs["36_3"].outcome is JobOutcome.CANCELLED  # folded 36_[2-3%1]
    assert obs["28_2"].rc == 3 and obs["28_3"].rc == 0
    assert sacct("sacct_timeout", ["23"])["23"].outcome is JobOutcome.TIMEOUT
    assert sacct("sacct_memory_exceeded", ["27"])["27"].rc == 137
    launch = sacct("sacct_unwritable_output", ["43"])["43"]
    assert (launch.outcome, launch.rc) == (JobOutcome.FAILED, None)
    assert "could not launch" in launch.reason
    # the Reason column is read: a launch failure without signal 53
    obs = parse_sacct("44|FAILED|0:0|JobLaunchFailure\n", ["44"])["44"]
    assert (obs.rc, obs.reason) == (None, launch.reason)
    assert sacct("sacct_unknown", ["999999"]) == {}
    assert sacct("sacct_controller_down", ["23"])["23"].outcome is JobOutcome.TIMEOUT
    running = sacct("sacct_while_pending_running", ["35", "36_2", "42"])
    assert [running[i].state for i in ("35", "36_2", "42")] == [
        "running",
        "pending",
        DONE,
    ]


def test_default_sacct_command_matches_parser():
    sched = SlurmScheduler()
    argv = sched.accounting_argv(["5", "6_1"])
    assert argv[-1] == "--jobs=5,6_1" and "-X" in argv
    assert sched.status_argv(["5", "6_1"])[-3:] == ["--jobs=5,6_1", "-o", "%i|%T|%r"]
    assert sched.kill_argv(["5", "6_1"]) == ["scancel", "5", "6_1"]


def test_job_result_memory_and_cluster_messages(tmp_path):
    sched = slurm(tmp_path)
    job = sched.create_job(0, ["true"])
    job.prepare_metadir()
    job.status = JobStatus.RUNNING
    job.stderr_file.write_text(read_capture("slurm/cat_stderr_memory_exceeded").stdout)
    launch = parse_squeue("27|FAILED|JobLaunchFailure\n", ["27"])["27"]
    rc, outcome, reason = sched.job_result(job, launch)
    assert (rc, outcome) == (137, JobOutcome.OUT_OF_MEMORY)
    assert "exceeded memory limit" in reason

    job = sched.create_job(1, ["true"])
    job.prepare_metadir()
    job.status = JobStatus.RUNNING
    timeout = read_capture("slurm/cat_stderr_timeout").stdout
    job.stderr_file.write_text(timeout)
    job.rc_file.write_text("143\n")
    rc, outcome, _ = sched.job_result(job, Observation(DONE, JobOutcome.TIMEOUT, "x"))
    assert (rc, outcome) == (143, JobOutcome.TIMEOUT)
    assert job.stderr_file.read_text() == timeout  # Slurm said it already

    job.stderr_file.write_text("")
    sched.job_result(job, Observation(DONE, JobOutcome.PREEMPTED, "preempted"))
    assert job.stderr_file.read_text() == "xqute: slurm: preempted: preempted\n"


def killing_job(sched, index=0):
    job = sched.create_job(index, ["true"])
    job.prepare_metadir()
    job.status = JobStatus.KILLING
    return job


def test_killed_jobs_get_a_nonzero_rc(tmp_path):
    sched = slurm(tmp_path)
    job = killing_job(sched)
    obs = parse_squeue("8|CANCELLED|Priority\n", ["8"])["8"]  # killed while queued
    rc, _, reason = sched.job_result(job, obs)
    assert (rc, reason) == (143, "killed by xqute")
    assert job.read_rc_file() == 143  # recorded in the job's folder
    assert not job.stderr_file.exists()  # nothing to say: xqute did it
    # gone from squeue (purged) without an rc file: killed, without sacct
    job = killing_job(sched, 1)
    obs = sched.gone_observation(job)
    assert sched.job_result(job, obs)[:2] == (143, JobOutcome.CANCELLED)
    # resolved through sacct (CANCELLED 0:0): never rc 0
    job = killing_job(sched, 2)
    obs = sacct("sacct_cancelled_pending", ["42"])["42"]
    assert sched.job_result(job, obs)[0] == 143


def test_stderr_is_read_once_per_failed_job(tmp_path, monkeypatch):
    import xqute.schedulers.slurm.scheduler as slurm_module

    reads = []
    real = slurm_module.stderr_tail
    monkeypatch.setattr(
        slurm_module, "stderr_tail", lambda job: reads.append(job) or real(job)
    )
    sched = slurm(tmp_path)
    job = sched.create_job(0, ["true"])
    job.prepare_metadir()
    job.status = JobStatus.RUNNING
    sched.job_result(job, Observation(DONE, JobOutcome.CANCELLED, "cancelled"))
    assert len(reads) == 1
    assert "cancelled" in job.stderr_file.read_text()
