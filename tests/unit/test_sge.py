"""The SGE backend without a cluster: directives, resources, and every parser
fed output captured from a real Grid Engine."""

import asyncio

import pytest
from captured import read_capture

from xqute import BackendError, CommandFailed, ConfigError, JobOutcome, JobStatus, Xqute
from xqute.schedulers.sge import (
    SgeScheduler,
    parse_error_reasons,
    parse_qacct,
    parse_qdel,
    parse_qstat_xml,
)

DONE = "done"


def header(sched, **job_kwargs):
    return sched.script_header(sched.create_job(3, ["true"], **job_kwargs))


def test_options_become_directives(tmp_path):
    sched = SgeScheduler(
        workdir=tmp_path,
        qsub="/usr/bin/qsub",
        qdel="/usr/bin/qdel",
        qstat="/usr/bin/qstat",
        q="1-day",
        l=["h_vmem=2G", "gpu=1"],
        cwd=True,
        notify=False,
        qsub_N="myjob",
        qsub_l=["h_rt=24:00:00"],
    )
    assert header(sched) == [
        "#$ -q 1-day",
        "#$ -l h_vmem=2G",
        "#$ -l gpu=1",
        "#$ -l h_rt=24:00:00",
        "#$ -cwd",
        "#$ -N myjob",
        "#$ -S /bin/bash",
        f'#$ -o "{tmp_path}/3/job.stdout"',
        f'#$ -e "{tmp_path}/3/job.stderr"',
    ]
    assert sched.tool("qstat") == "/usr/bin/qstat"


def test_defaults_name_and_old_spellings(tmp_path):
    with pytest.warns(DeprecationWarning):
        xqute = Xqute(
            "sge",
            workdir=str(tmp_path),
            scheduler_forks=100,
            sge_q="1-day",
            sge_l=["h_vmem=2G", "gpu=1"],
        )
    lines = header(xqute.scheduler)
    assert lines[:5] == [
        "#$ -q 1-day",
        "#$ -l h_vmem=2G",
        "#$ -l gpu=1",
        "#$ -S /bin/bash",
        "#$ -cwd",
    ]
    assert "#$ -N xqute-3" in lines
    assert "#$ -cwd" not in header(SgeScheduler(workdir=tmp_path, cwd=False))
    assert "#$ -cwd" not in header(SgeScheduler(workdir=tmp_path, wd="/x"))
    named = SgeScheduler(workdir=tmp_path, jobname_prefix='1 "a" $(id)')
    assert "#$ -N x1__a____id_-3" in header(named)


def test_generic_resources_and_explicit_options_win(tmp_path):
    res = {"cpus": 4, "mem": "3G", "gpus": 2, "time": "90s"}
    lines = header(SgeScheduler(workdir=tmp_path), resources=res)
    assert lines[:6] == [
        "#$ -S /bin/bash",
        "#$ -cwd",
        "#$ -pe smp 4",
        "#$ -l h_vmem=768M",  # per slot: 3G for the job
        "#$ -l gpu=2",
        "#$ -l h_rt=90",
    ]
    sched = SgeScheduler(
        workdir=tmp_path, pe="mpi 2", l="h_vmem=1G,h_rt=5", cpus_pe="x"
    )
    lines = header(sched, resources=res)
    assert "#$ -pe mpi 2" in lines and "#$ -l h_vmem=1G,h_rt=5" in lines
    assert "#$ -l gpu=2" in lines
    assert not any("3072M" in line or "h_rt=90" in line for line in lines)


@pytest.mark.parametrize(
    ("opts", "res", "per_slot"),
    [
        ({}, {"mem": 1000}, "1000M"),  # one slot
        ({}, {"cpus": 3, "mem": 1000}, "334M"),  # xqute's pe: rounded up
        ({"pe": "mpi 4"}, {"cpus": 3, "mem": 1000}, "250M"),  # the user's slots
        ({"pe": "mpi 2-8"}, {"mem": 1000}, "1000M"),  # a range: unknown
    ],
)
def test_generic_mem_is_per_job(tmp_path, opts, res, per_slot):
    lines = header(SgeScheduler(workdir=tmp_path, **opts), resources=res)
    assert f"#$ -l h_vmem={per_slot}" in lines


def test_unsafe_options_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="'q'"):
        SgeScheduler(workdir=tmp_path, q="a -l h_rt=1")
    with pytest.raises(ConfigError, match="'o' path"):
        SgeScheduler(workdir=tmp_path, o="/tmp/$USER.out")
    with pytest.raises(ConfigError, match="workdir"):
        SgeScheduler(workdir=tmp_path / "a#b")
    with pytest.raises(ConfigError, match="array=True"):
        SgeScheduler(workdir=tmp_path, t="1-3")
    with pytest.raises(ConfigError, match="array_window_s"):
        SgeScheduler(workdir=tmp_path, array_window_s=-1)
    with pytest.raises(ConfigError, match="'pe'"):
        SgeScheduler(workdir=tmp_path, cpus_pe="my pe")


def test_parse_submit():
    sched = SgeScheduler()
    for name, jid in [("qsub_plain", "20"), ("qsub_terse", "21"), ("qsub_array", "24")]:
        assert sched.parse_submit(read_capture(f"sge/{name}").result) == jid
    result = read_capture("sge/qsub_array_terse").result
    assert sched.parse_array_submit(result, [1, 2, 3]) == ["25.1", "25.2", "25.3"]
    with pytest.raises(BackendError, match="no job id"):
        sched.parse_submit(read_capture("sge/qsub_qmaster_down").result)


def test_transient_submit_errors():
    sched = SgeScheduler()

    def transient(name):
        cap = read_capture(f"sge/{name}")
        return sched.is_transient(CommandFailed(["qsub"], cap.rc, "", cap.stderr))

    assert transient("qsub_qmaster_down")
    for name in ("qsub_bad_queue", "qsub_bad_option", "qsub_missing_script"):
        assert not transient(name)


def test_parse_qstat_xml():
    ids = ["31", "32", "30", "35", "36", "34.1", "34.2", "34.3", "37.1", "37.2"]
    ids += ["99", "99.1"]
    obs = parse_qstat_xml(read_capture("sge/qstat_xml").stdout, ids)
    states = {jid: o.state for jid, o in obs.items()}
    assert states == {
        "31": "running",
        "32": "running",
        "30": DONE,  # Eqw: it would wait forever
        "35": "pending",
        "36": "pending",  # hqw
        "34.1": "running",
        "34.2": "pending",
        "34.3": "pending",
        "37.1": "pending",
        "37.2": "pending",
    }
    assert obs["30"].outcome is JobOutcome.FAILED and "Eqw" in obs["30"].reason
    # rescheduled: queued again (Rq) or running again (Rr)
    xml = read_capture("sge/qstat_xml").stdout
    obs = parse_qstat_xml(xml.replace("<state>hqw<", "<state>Rq<"), ["36"])
    assert obs["36"].state == "pending"
    obs = parse_qstat_xml(xml.replace("<state>hqw<", "<state>Rr<"), ["36"])
    assert obs["36"].state == "running"
    assert parse_qstat_xml(read_capture("sge/qstat_xml_empty").stdout, ids) == {}
    assert parse_qstat_xml("", ids) == {}
    with pytest.raises(BackendError, match="XML"):
        parse_qstat_xml("<job_info><queue_info>", ids)


def qacct(name, jid):
    return parse_qacct(read_capture(f"sge/{name}").stdout, jid)


def test_parse_qacct_outcomes():
    assert qacct("qacct_success", "20").outcome is JobOutcome.SUCCEEDED
    failed = qacct("qacct_exit3", "22")
    assert (failed.outcome, failed.rc, failed.reason) == (JobOutcome.FAILED, 3, None)
    timeout = qacct("qacct_h_rt_exceeded", "29")
    assert (timeout.outcome, timeout.rc) == (JobOutcome.TIMEOUT, 137)
    assert "h_rt=5" in timeout.reason
    for name, jid in [("qacct_qdel_running", "32"), ("qacct_killed_by_signal", "23")]:
        # a qdel is a SIGKILL like any other: SGE records the same for both
        obs = qacct(name, jid)
        assert (obs.outcome, obs.rc) == (JobOutcome.CANCELLED, 137)
    eqw = qacct("qacct_eqw_deleted", "30")  # failed 26 with exit_status 0
    assert (eqw.outcome, eqw.rc) == (JobOutcome.FAILED, None)
    assert "failed 26: opening input/output file" in eqw.reason
    assert qacct("qacct_array", "24.2").rc == 3
    assert qacct("qacct_array", "24.3").outcome is JobOutcome.SUCCEEDED
    assert qacct("qacct_array_task", "24.2").rc == 3
    assert qacct("qacct_unknown", "999999") is None
    assert qacct("qacct_several", "20") is None  # only the last -j is reported
    assert qacct("qacct_several", "22").rc == 3
    assert qacct("qacct_qmaster_down", "20").outcome is JobOutcome.SUCCEEDED
    garbled = read_capture("sge/qacct_success").stdout.replace(
        "failed       0", "failed x"
    )
    assert parse_qacct(garbled, "20") is None


def test_qacct_memory_limit_is_out_of_memory():
    """Crafted: failed 37 for a job that requested only h_vmem."""
    text = read_capture("sge/qacct_h_rt_exceeded").stdout.replace(
        "-l h_rt=5", "-l h_vmem=100M"
    )
    assert parse_qacct(text, "29").outcome is JobOutcome.OUT_OF_MEMORY


def test_parse_qdel_and_error_reasons():
    assert parse_qdel(read_capture("sge/qdel_running").stdout) == ({"32"}, set())
    assert parse_qdel(read_capture("sge/qdel_several").stdout)[0] == {"35", "36"}
    out = read_capture("sge/qdel_eqw_and_array_task").stdout
    assert parse_qdel(out)[0] == {"30", "37.1"}
    out = read_capture("sge/qdel_finished_and_live").stdout
    assert parse_qdel(out) == ({"37"}, {"22"})
    assert parse_qdel(read_capture("sge/qdel_unknown").stdout) == (set(), {"999999"})
    assert parse_qdel(read_capture("sge/qdel_qmaster_down").stdout) == (set(), set())
    reasons = parse_error_reasons(read_capture("sge/qstat_j_eqw").stdout)
    assert "can't open output file" in reasons["30"]


def test_builders_and_checks():
    sched = SgeScheduler()
    assert sched.status_argv(["1", "2.3"]) == ["qstat", "-xml"]
    assert sched.kill_argv(["1", "2.3"]) == ["qdel", "1", "2.3"]
    assert sched.accounting_argv(["7"]) == ["qacct", "-j", "7"]
    assert sched.accounting_argv(["7.2"]) == ["qacct", "-j", "7", "-t", "2"]
    result = read_capture("sge/qacct_exit3").result
    assert sched.parse_accounting(result, ["22"])["22"].rc == 3
    assert sched.parse_accounting(read_capture("sge/qacct_unknown").result, ["9"]) == {}
    # qdel exits 1 for a finished id: not a failure when each id is accounted for
    sched.check_kill(read_capture("sge/qdel_finished_and_live").result, ["22", "37"])
    with pytest.raises(CommandFailed):
        sched.check_kill(read_capture("sge/qdel_qmaster_down").result, ["22"])


def test_killed_job_gets_rc_unless_the_wrapper_wrote_one(tmp_path):
    sched = SgeScheduler(workdir=tmp_path)
    job = sched.create_job(0, ["true"])
    job.prepare_metadir()
    job.status = JobStatus.KILLING
    gone = sched.gone_observation(job)  # qdel is a SIGKILL: no rc
    assert sched.job_result(job, gone)[:2] == (137, JobOutcome.CANCELLED)
    assert job.read_rc_file() == 137 and job.read_info()["reason"] == "killed"
    job.rc_file.write_text("0\n")
    assert sched.job_result(job, gone)[0] == 0 and job.read_rc_file() == 0


class Offline(SgeScheduler):
    """qstat lists nothing, qacct knows nothing: every job left without a trace."""

    async def run(self, argv, check=True):
        tool = argv[0]
        self.calls.append(tool)
        name = {"qstat": "qstat_xml_empty", "qacct": "qacct_qdel_pending"}[tool]
        return read_capture(f"sge/{name}").result


async def test_gone_without_a_trace_is_cancelled_if_it_never_started(tmp_path):
    """One timer (the poller's lost grace) decides, whatever the timing."""
    sched = Offline(workdir=tmp_path, poll_interval_s=0.02, lost_grace_s=0.1)
    sched.calls = []
    queued, started, killed = (sched.create_job(i, ["true"]) for i in range(3))
    for job in (queued, started, killed):
        job.prepare_metadir()
        job.write_status(JobStatus.SUBMITTED)
        job.jid = str(job.index + 40)
    started.write_status(JobStatus.RUNNING)
    killed.status = JobStatus.KILLING  # deleted by xqute: settled at once
    assert (await sched.wait_done(killed)).reason == "killed by xqute"
    assert sched.calls == ["qstat"]
    queued_obs, started_obs = await asyncio.wait_for(
        asyncio.gather(sched.wait_done(queued), sched.wait_done(started)), 5
    )
    assert queued_obs.outcome is JobOutcome.CANCELLED
    assert "deleted from SGE while queued" in queued_obs.reason
    assert started_obs.outcome is JobOutcome.LOST
    assert "qacct" in sched.calls  # accounting was asked meanwhile
    await sched.aclose()
