"""The HTCondor backend without a pool: the submit description (values written
by the submit language's rules), and every parser fed output captured from a
real HTCondor 23.9 pool (tests/data/htcondor, scripts/capture/htcondor.sh)."""

import json
import re

import pytest
from captured import DATA, read_capture

from xqute import BackendError, CommandFailed, ConfigError, JobOutcome, Xqute
from xqute.outcome import Observation, Seen
from xqute.schedulers.helpers.command import CommandResult
from xqute.schedulers.htcondor import (
    HTCondorScheduler,
    parse_condor_history,
    parse_condor_q,
    render_submit,
    submit_value,
)

RECIPE = DATA / "htcondor" / "recipe"


def description(sched, **job_kwargs):
    """{name: value} of the -a lines of a job's condor_submit argv."""
    job = sched.create_job(3, ["true"], **job_kwargs)
    argv = sched.submit_argv(job, job.wrapped_script_file("htcondor"))
    assert argv[:2] == ["condor_submit", "-terse"] and argv[-2:] == ["-queue", "1"]
    lines = argv[3:-2:2]
    assert argv[2:-2:2] == ["-a"] * len(lines)
    return dict(line.split(" = ", 1) for line in lines)


def test_the_description_runs_the_wrapped_script(tmp_path):
    sched = HTCondorScheduler(workdir=tmp_path, jobname_prefix="xq")
    desc = description(sched)
    folder = tmp_path / "3"
    assert desc == {
        "executable": f"{folder}/job.wrapped.htcondor",
        "universe": "vanilla",
        "should_transfer_files": "NO",
        "getenv": "true",
        "job_max_vacate_time": "7",  # kill_grace_s 5 + 2
        "batch_name": "xq-3",
    }


def test_options_resources_and_explicit_options_win(tmp_path):
    sched = HTCondorScheduler(
        workdir=tmp_path,
        condor_q="/opt/condor/bin/condor_q",
        htcondor_requirements='OpSys == "LINUX"',
        rank="Memory",
        accounting_group="group_physics.alice",
        **{"+ProjectName": 'my "proj"', "My.Flag": True, "request_disk": "1G"},
    )
    res = {"cpus": 4, "mem": "3G", "gpus": 2, "time": "90s"}
    desc = description(sched, resources=res)
    assert sched.tool("condor_q") == "/opt/condor/bin/condor_q"
    assert "condor_q" not in desc
    assert desc["requirements"] == 'OpSys == "LINUX"'
    assert desc["+ProjectName"] == '"my \\"proj\\""'
    assert desc["My.Flag"] == "true"
    assert (desc["request_cpus"], desc["request_memory"]) == ("4", "3072M")
    assert (desc["request_gpus"], desc["allowed_execute_duration"]) == ("2", "90")
    assert desc["periodic_hold"].endswith("> 90")
    assert desc["periodic_hold_subcode"] == "47"
    explicit = HTCondorScheduler(
        workdir=tmp_path,
        request_cpus=1,
        request_memory="1G",
        allowed_execute_duration=30,
        universe="docker",
        output="/o",
        getenv=False,
    )
    desc = description(explicit, resources=res)
    assert (desc["request_cpus"], desc["request_memory"]) == ("1", "1G")
    assert desc["allowed_execute_duration"] == "30" and "periodic_hold" not in desc
    assert (desc["universe"], desc["output"], desc["getenv"]) == (
        "docker",
        "/o",
        "false",
    )


@pytest.mark.parametrize(
    ("name", "value", "written"),
    [
        ("batch_name", "a$x", "a$(DOLLAR)x"),
        ("batch_name", "$(Owner)$ENV(HOME)", "$(DOLLAR)(Owner)$(DOLLAR)ENV(HOME)"),
        ("batch_name", "# not a comment", "# not a comment"),
        ("batch_name", 'it\'s "q"', 'it\'s "q"'),
        ("batch_name", "a\\b", "a\\b"),
        ("+Attr", 'say "hi" $1', '"say \\"hi\\" $(DOLLAR)1"'),
        ("my.attr", "trail\\x", '"trail\\x"'),
        ("request_cpus", 2, "2"),
        ("getenv", False, "false"),
    ],
)
def test_values_follow_the_submit_language(name, value, written):
    # checked against a real pool: tests/data/htcondor/q_json_hostile_values.txt
    assert submit_value(name, value) == written


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("a\nqueue 100", "control character"),
        ("a\rb", "control character"),
        ("tab\there", "control character"),
        ("x$$(Cpus)", "'\\$\\$'"),
        (" padded", "blanks"),
        ("padded ", "blanks"),
        ("cont\\", "ends with a backslash"),
        # a real pool writes "$(DOLLAR)(DOLLAR)" as "$" (a probe by the review of #14)
        ("pay $(DOLLAR)5", "'\\$\\(DOLLAR\\)'"),
        ("$(dollar)", "'\\$\\(DOLLAR\\)'"),
    ],
)
def test_unsafe_values_are_rejected(tmp_path, value, problem):
    with pytest.raises(ConfigError, match=problem):
        HTCondorScheduler(workdir=tmp_path, requirements=value)
    with pytest.raises(ConfigError, match="cannot be written safely"):
        HTCondorScheduler(workdir=tmp_path, jobname_prefix=value)


def test_bad_names_reserved_options_and_values_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="'executable'"):
        HTCondorScheduler(workdir=tmp_path, executable="/bin/sh")
    with pytest.raises(ConfigError, match="'arguments'"):
        HTCondorScheduler(workdir=tmp_path, arguments="-c true")
    with pytest.raises(ConfigError, match="name 'a b' is invalid"):
        render_submit({"a b": 1})
    for name in ("queue\n", "request_cpus\n", "+Attr\n"):  # else a 2nd line
        with pytest.raises(ConfigError, match="is invalid"):
            HTCondorScheduler(workdir=tmp_path, **{name: 1})
    with pytest.raises(ConfigError, match="backslash before a quote"):
        submit_value("+Attr", 'a\\"b')
    with pytest.raises(ConfigError, match="give text, a number"):
        HTCondorScheduler(workdir=tmp_path, requirements=["a", "b"])
    with pytest.raises(ConfigError, match="cannot be written safely"):
        HTCondorScheduler(workdir=tmp_path / "a\nb")


def test_engine_name_and_prefix():
    xqute = Xqute(
        "htcondor", workdir="/tmp/xq-unit", scheduler_opts={"htcondor_rank": "Memory"}
    )
    assert isinstance(xqute.scheduler, HTCondorScheduler)
    assert xqute.scheduler.options == {"rank": "Memory"}


def test_parse_submit_single_and_array():
    sched = HTCondorScheduler()
    single = read_capture("htcondor/submit_terse").result
    assert sched.parse_submit(single) == single.stdout.split()[0]  # "C.0 - C.0"
    result = read_capture("htcondor/submit_terse_array").result
    cluster = result.stdout.split(".")[0]  # "C.0 - C.2"
    ids = [f"{cluster}.{proc}" for proc in range(3)]
    assert sched.parse_array_submit(result, [0, 1, 2]) == ids
    with pytest.raises(BackendError):
        sched.parse_array_submit(result, [0, 1])
    for line in (RECIPE / "submit-terse.txt").read_text().splitlines():
        name, first, _, last = line.split()
        out = CommandResult(("condor_submit",), 0, f"{first} - {last}\n", "")
        assert sched.parse_submit(out) == first, name
    with pytest.raises(BackendError, match="no job ids"):
        sched.parse_submit(read_capture("htcondor/submit_plain").result)


def test_transient_submit_errors():
    sched = HTCondorScheduler()

    def transient(name):
        cap = read_capture(f"htcondor/{name}")
        return sched.is_transient(
            CommandFailed(["condor_submit"], cap.rc, "", cap.stderr)
        )

    assert transient("submit_schedd_down")
    for name in ("submit_missing_executable", "submit_as_root"):
        assert not transient(name)


def test_parse_condor_q():
    cap = read_capture("htcondor/q_json")
    ids = dict(re.findall(r"(\w+)=(\d+)", cap.notes[0]))
    jid = {name: f"{number}.0" for name, number in ids.items()}
    obs = parse_condor_q(cap.stdout, [*jid.values(), "99999.0"])
    assert {
        k: obs[jid[k]].state for k in ("RUN", "IDLE", "UHOLD", "SUBHOLD", "TRAPS")
    } == {
        "RUN": "running",
        "IDLE": "pending",
        "UHOLD": "pending",  # condor_hold: waits for condor_release
        "SUBHOLD": "pending",  # hold = true
        "TRAPS": "running",
    }
    assert jid["OK"] not in obs and "99999.0" not in obs  # finished, unknown: gone
    timeout, badexec = obs[jid["TO"]], obs[jid["BADX"]]
    assert (timeout.state, timeout.outcome) == ("done", JobOutcome.TIMEOUT)
    # allowed_execute_duration (HoldReasonCode 47) or xqute's periodic_hold (3/47)
    assert re.search(r"HoldReasonCode (47|3)\)$", timeout.reason)
    assert (badexec.outcome, badexec.rc) == (JobOutcome.FAILED, None)
    assert "/nonexistent/dir/x.out" in badexec.reason  # its output file
    assert badexec.reason.endswith("(HoldReasonCode 7)")
    assert parse_condor_q(read_capture("htcondor/q_unknown").stdout, ["99999.0"]) == {}
    # the native time-limit hold (allowed_execute_duration): HoldReasonCode 47
    recipe = parse_condor_q(
        (RECIPE / "q.json").read_text(), ["5.0", "6.0", "8.0", "9.0"]
    )
    assert [recipe[i].state for i in ("5.0", "8.0")] == ["running", "pending"]
    assert recipe["6.0"].outcome is JobOutcome.TIMEOUT
    assert "HoldReasonCode 47" in recipe["6.0"].reason
    assert recipe["9.0"].outcome is JobOutcome.FAILED


def test_parse_condor_q_other_states():
    ads = (
        '[{"ClusterId": 1, "ProcId": 0, "JobStatus": 3, "RemoveReason": "rm"},'
        ' {"ClusterId": 1, "ProcId": 1, "JobStatus": 5, "HoldReasonCode": 34,'
        ' "HoldReason": "memory"},'
        ' {"ClusterId": 1, "ProcId": 4, "JobStatus": 5, "HoldReasonCode": 3,'
        ' "HoldReasonSubCode": 47, "HoldReason": "time limit of 2s exceeded"},'
        ' {"ClusterId": 1, "ProcId": 2, "JobStatus": 4, "ExitCode": 0},'
        ' {"ClusterId": 1, "ProcId": 3, "JobStatus": 7}]'
    )
    obs = parse_condor_q(ads, ["1.0", "1.1", "1.2", "1.3", "1.4"])
    assert obs["1.0"].outcome is JobOutcome.CANCELLED  # being removed
    assert obs["1.1"].outcome is JobOutcome.OUT_OF_MEMORY
    assert (obs["1.2"].outcome, obs["1.2"].rc) == (JobOutcome.SUCCEEDED, 0)
    assert obs["1.3"].state == "running"  # suspended
    assert obs["1.4"].outcome is JobOutcome.TIMEOUT  # xqute's periodic_hold
    with pytest.raises(BackendError, match="unreadable JSON"):
        parse_condor_q("Error: ...", ["1.0"])


def test_parse_condor_history():
    cap = read_capture("htcondor/history_json")
    ids = dict(re.findall(r"(\w+)=(\d+)", cap.notes[0]))
    arr = ids.pop("ARR")
    jid = {name: f"{number}.0" for name, number in ids.items()}
    wanted = [*jid.values(), f"{arr}.0", f"{arr}.1", f"{arr}.2", "99999.0"]
    obs = parse_condor_history(cap.stdout, wanted)
    result = {k: (obs[v].outcome, obs[v].rc) for k, v in jid.items() if v in obs}
    assert result["OK"] == (JobOutcome.SUCCEEDED, 0)
    assert result["FAIL"] == (JobOutcome.FAILED, 3)
    assert result["SIG"] == (JobOutcome.FAILED, 137)  # kill -KILL $$
    assert result["RUN"] == (JobOutcome.CANCELLED, 143)  # condor_rm: SIGTERM
    assert result["TRAPS"] == (JobOutcome.CANCELLED, 137)  # ignored TERM: SIGKILL
    assert result["IDLE"] == (JobOutcome.CANCELLED, None)  # never ran
    # removed while held: the last hold says why (LastHoldReasonCode ...)
    assert result["TO"] == (JobOutcome.TIMEOUT, 143)
    assert obs[jid["TO"]].reason.endswith("; then removed")
    assert result["BADX"] == (JobOutcome.FAILED, None)
    assert result["UHOLD"][0] is result["SUBHOLD"][0] is JobOutcome.CANCELLED
    assert "via condor_rm (by user xqute-condor)" in obs[jid["IDLE"]].reason
    assert "signal 9" in obs[jid["SIG"]].reason
    assert [obs[f"{arr}.{p}"].rc for p in range(3)] == [0, 3, 0]
    assert "99999.0" not in obs
    assert (
        parse_condor_history(read_capture("htcondor/history_unknown").stdout, ["9.0"])
        == {}
    )
    recipe = parse_condor_history(
        (RECIPE / "history.json").read_text(), ["11.0", "1.9"]
    )
    assert (recipe["11.0"].outcome, recipe["11.0"].rc) == (JobOutcome.FAILED, 137)
    assert recipe["1.9"].outcome is JobOutcome.CANCELLED


def test_condor_rm_of_jobs_gone_already_is_no_failure():
    sched = HTCondorScheduler()
    for name in ("rm_several", "rm_finished", "rm_unknown", "rm_finished_and_live"):
        sched.check_kill(read_capture(f"htcondor/{name}").result, ["1.0"])
    with pytest.raises(CommandFailed):
        sched.check_kill(read_capture("htcondor/rm_schedd_down").result, ["1.0"])


def test_status_and_history_commands_take_all_ids_at_once():
    sched = HTCondorScheduler()
    ids = [f"{i}.0" for i in range(1, 201)]
    argv = sched.status_argv(ids)
    assert argv[: len(ids) + 1] == ["condor_q", *ids]
    assert argv[-3:-1] == ["-json", "-attributes"]
    assert "HoldReasonCode" in argv[-1]
    history = sched.accounting_argv(ids)
    assert history[len(ids) + 1 : len(ids) + 3] == ["-limit", "200"]
    assert sched.kill_argv(ids) == ["condor_rm", *ids]


async def test_a_job_held_for_good_is_removed_once_it_is_done(tmp_path):
    """after_done: a hold xqute cannot release would keep the job in the queue
    forever; other ends leave condor_rm alone."""
    log = tmp_path / "rm.log"
    rm = tmp_path / "condor_rm"
    rm.write_text(f'#!/bin/sh\necho "$@" >>{log}\n')
    rm.chmod(0o755)
    sched = HTCondorScheduler(workdir=tmp_path / "wd", condor_rm=str(rm))
    held, done = sched.create_job(0, ["true"]), sched.create_job(1, ["true"])
    held.jid, done.jid = "7.0", "7.1"
    ad = {"JobStatus": 5, "HoldReasonCode": 13, "HoldReason": "no such file"}
    seen = parse_condor_q(json.dumps([{"ClusterId": 7, "ProcId": 0, **ad}]), ["7.0"])
    await sched.after_done(held, seen["7.0"])
    await sched.after_done(done, Observation(Seen.DONE, JobOutcome.SUCCEEDED))
    await sched.after_done(done, None)
    assert log.read_text() == "7.0\n"
