"""The wrapped script, rendered and run with bash directly."""

import subprocess
import time

import psutil
import pytest

from xqute.script import render_command, render_wrapped_script

HOSTILE = [
    "a b",
    "$HOME",
    "`id`",
    "x;echo hi",
    "'quote'",
    '"dq"',
    "new\nline",
    "\\",
    "*",
    "$(id)",
]


def run_script(tmp_path, **kw):
    meta = tmp_path / "0"
    meta.mkdir(exist_ok=True)
    kw.setdefault("cmd", ["true"])
    text = render_wrapped_script(
        index=0, scheduler="test", workdir=str(tmp_path), job_metadir=str(meta), **kw
    )
    script = meta / "job.wrapped.test"
    script.write_text(text)
    proc = subprocess.run(["bash", str(script)], start_new_session=True, timeout=30)
    read = lambda name: (meta / name).read_text() if (meta / name).exists() else None  # noqa: E731
    return proc.returncode, read, text


def test_argv_is_passed_literally(tmp_path):
    rc, read, _ = run_script(tmp_path, cmd=["printf", "%s|", *HOSTILE])
    assert rc == 0
    assert read("job.stdout") == "".join(f"{a}|" for a in HOSTILE)
    assert read("job.rc") == "0\n" and read("job.status") == "4\n"


def test_string_command_is_shell_code_in_a_subshell(tmp_path):
    rc, read, _ = run_script(
        tmp_path, cmd="echo out; echo err >&2; _xq_dir=/nowhere; exit 3"
    )
    assert rc == 3
    assert read("job.stdout") == "out\n" and read("job.stderr") == "err\n"
    assert read("job.rc") == "3\n" and read("job.status") == "5\n"


def test_string_command_syntax_error_fails_the_job_not_the_wrapper(tmp_path):
    rc, read, _ = run_script(tmp_path, cmd="echo 'unbalanced")
    assert rc != 0 and read("job.rc") == f"{rc}\n"
    assert "unexpected EOF" in read("job.stderr") or "unterminated" in read(
        "job.stderr"
    )


def test_env_values_cannot_inject(tmp_path):
    envs = {f"V{i}": v for i, v in enumerate(HOSTILE)}
    cmd = "printf '%s|' " + " ".join(f'"$V{i}"' for i in range(len(HOSTILE)))
    rc, read, _ = run_script(tmp_path, cmd=cmd, envs=envs)
    assert rc == 0 and read("job.stdout") == "".join(f"{a}|" for a in HOSTILE)


def test_cwd_with_spaces_and_missing_cwd(tmp_path):
    where = tmp_path / "my dir $x"
    where.mkdir()
    rc, read, _ = run_script(tmp_path, cmd=["pwd"], cwd=str(where))
    assert rc == 0 and read("job.stdout") == f"{where}\n"
    rc, read, _ = run_script(tmp_path, cmd=["pwd"], cwd=str(tmp_path / "missing"))
    assert rc == 1 and "missing" in read("job.stderr")


def test_job_variables_and_info(tmp_path):
    _rc, read, _ = run_script(
        tmp_path, cmd='echo "$XQUTE_JOB_INDEX $XQUTE_JOB_METADIR $XQUTE_METADIR"'
    )
    assert read("job.stdout") == f"0 {tmp_path}/0 {tmp_path}\n"
    info = dict(line.split("=", 1) for line in read("job.info").splitlines())
    assert {"start", "end", "host", "pid"} <= set(info)
    assert float(info["end"]) >= float(info["start"])


def test_timeout_kills_the_whole_tree(tmp_path):
    marker = tmp_path / "grandchild-alive"
    cmd = f"(sleep 30.31; touch {marker}) & sleep 5"
    rc, read, _ = run_script(tmp_path, cmd=cmd, timeout_s=0.2, kill_grace_s=1)
    assert rc == 124 and read("job.rc") == "124\n" and read("job.status") == "5\n"
    assert "reason=timeout" in read("job.info")
    # the subshell that would touch the marker is gone (a fork of the wrapper:
    # its command line names this test's script)
    script = str(tmp_path / "0" / "job.wrapped.test")
    deadline = time.monotonic() + 8
    while left := [
        p
        for p in psutil.process_iter(["cmdline"])
        if script in (p.info["cmdline"] or [])
    ]:
        assert time.monotonic() < deadline, left
        time.sleep(0.02)
    assert not marker.exists()


def test_timeout_escalates_to_sigkill_when_term_is_ignored(tmp_path):
    rc, read, _ = run_script(
        tmp_path, cmd="trap '' TERM; sleep 30", timeout_s=0.2, kill_grace_s=0.3
    )
    assert rc == -9  # the wrapper recorded, then SIGKILLed its group (itself too)
    assert read("job.rc") == "124\n" and read("job.status") == "5\n"


def test_plugin_snippets_run_in_order(tmp_path):
    _rc, read, _ = run_script(
        tmp_path,
        cmd=["echo", "cmd"],
        init=["echo init"],
        prep=["echo prep"],
        end=['echo "end $XQUTE_JOB_RC"'],
    )
    assert read("job.stdout") == "init\nprep\ncmd\nend 0\n"


def test_header_lines_follow_the_shebang(tmp_path):
    text = render_wrapped_script(
        index=1,
        scheduler="x",
        workdir="/w",
        job_metadir="/w/1",
        cmd=["true"],
        header=["#SBATCH --job-name=a"],
    )
    assert text.splitlines()[:2] == ["#!/usr/bin/env bash", "#SBATCH --job-name=a"]


@pytest.mark.parametrize(
    ("kw", "background"),
    [({}, False), ({"timeout_s": 5}, True), ({"own_process_group": False}, True)],
)
def test_background_only_when_the_wrapper_must_react(kw, background):
    text = render_wrapped_script(
        index=0, scheduler="x", workdir="/w", job_metadir="/w/0", cmd=["true"], **kw
    )
    assert ("_xq_pid=$!" in text) is background


def test_render_command():
    assert render_command(["a b", "c"]) == "'a b' c"
    assert render_command("echo $x") == "(eval -- 'echo $x')"


@pytest.mark.parametrize(
    ("current", "records"), [("2", True), ("3", False), (None, False)]
)
def test_a_stale_trial_records_nothing(tmp_path, current, records):
    meta = tmp_path / "0"
    meta.mkdir()
    if current is not None:
        (meta / "job.trial").write_text(f"{current}\n")
    _rc, read, _ = run_script(tmp_path, cmd=["echo", "out"], trial=2)
    assert (read("job.rc") == "0\n") is records
    assert (read("job.status") is not None) is records
    # a stale trial does not even start the command
    assert (read("job.stdout") == "out\n") is records


@pytest.mark.parametrize(
    ("cmd", "own_group", "rc", "name"),
    [
        # a signal that reaches the wrapper alone (HTCondor's kill_sig, SGE's
        # -notify): recorded, and forwarded to the command as TERM
        ("kill -USR2 $$; sleep 5", False, 140, "USR2"),
        ("kill -XCPU $$; sleep 5", False, 152, "XCPU"),
        # one that reached the whole group (SGE's s_cpu limit)
        ("kill -XCPU 0; sleep 5", True, 152, "XCPU"),
    ],
)
def test_other_fatal_signals_are_failures_not_successes(
    tmp_path, cmd, own_group, rc, name
):
    """bash runs the EXIT trap before dying of such a signal, with $? = 0: the
    job would be recorded as succeeded while its command was cut short."""
    got, read, _ = run_script(tmp_path, cmd=cmd, own_process_group=own_group)
    assert (got, read("job.rc"), read("job.status")) == (rc, f"{rc}\n", "5\n")
    assert f"reason=killed by SIG{name}" in read("job.info")
