"""``xqute run`` as GNU parallel users expect it: job output shown (grouped,
tagged, in order, line by line, or not at all), stdin streamed, argument
templates, a job log with resume, and a failed-jobs table that fits 80
columns. Through the installed command, in real processes."""

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import time

import pytest

XQUTE = [sys.executable, "-m", "xqute", "run"]


@pytest.fixture
def run(tmp_path):
    def run(*args, input=None, timeout=120):
        return subprocess.run(
            [*XQUTE, "-w", str(tmp_path / "wd"), *args],
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
            cwd=tmp_path,
        )

    return run


def jobs_file(tmp_path, *lines):
    path = tmp_path / "jobs.txt"
    path.write_text("".join(f"{line}\n" for line in lines))
    return str(path)


def test_each_jobs_output_is_printed_whole_when_it_ends(run, tmp_path):
    out = run(
        "-j", "2",
        jobs_file(tmp_path, "echo a1; sleep 0.4; echo a2", "echo b1; echo b2 >&2"),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "a1\na2\n" in out.stdout and "b1\n" in out.stdout  # never interleaved
    assert "b2\n" in out.stderr and "b2" not in out.stdout
    assert out.stdout.index("b1") < out.stdout.index("a1")  # as they end


def test_tag_keep_order_and_tagstring(run):
    out = run("--tag", "-k", "sleep 0.{}; echo {}", ":::", "3", "2", "1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[:3] == ["3\t3", "2\t2", "1\t1"]
    out = run("--tagstring", "job{#}", "-k", "echo {}", ":::", "x", "y")
    assert out.stdout.splitlines()[:2] == ["job1\tx", "job2\ty"]


def test_quiet_prints_no_job_output(run, tmp_path):
    out = run("--quiet", jobs_file(tmp_path, "echo secret", "echo secret >&2"))
    assert out.returncode == 0 and "secret" not in out.stdout + out.stderr


def test_line_buffer_prints_lines_as_the_jobs_write_them(tmp_path):
    proc = subprocess.Popen(
        [*XQUTE, "-w", str(tmp_path / "wd"), "--line-buffer",
         jobs_file(tmp_path, "echo first; sleep 5; echo second")],
        stdout=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        began = time.monotonic()
        assert proc.stdout.readline() == "first\n"
        assert time.monotonic() - began < 4.5  # before the job wrote "second"
        assert proc.stdout.readline() == "second\n"
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_stdin_jobs_start_as_their_lines_arrive(tmp_path):
    proc = subprocess.Popen(
        [*XQUTE, "-w", str(tmp_path / "wd"), "--quiet"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        proc.stdin.write("touch first\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 20
        while not (tmp_path / "first").exists():  # stdin is still open
            assert time.monotonic() < deadline, "the first job did not start"
            time.sleep(0.05)
        proc.stdin.write("# a comment\n\ntouch second\n")
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
        assert (tmp_path / "second").exists()
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


HOSTILE = ["a b", "$HOME", "it's", "-n", "x; touch pwned", "`id`", "*"]


def test_template_values_are_one_word_each(run, tmp_path):
    out = run("-k", "printf '%s\\n' {}", ":::", *HOSTILE)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[: len(HOSTILE)] == HOSTILE
    assert not (tmp_path / "pwned").exists()
    values = tmp_path / "values.txt"
    values.write_text("one\ntwo words\n")
    for args in (
        ["-a", str(values), "echo {#}:{}"],
        ["echo {#}:{}", "::::", str(values)],
    ):
        out = run("-k", *args)
        assert out.stdout.splitlines()[:2] == ["1:one", "2:two words"], out.stderr
    out = run("-k", "-a", "-", "echo {/.}", input="/x/a.txt\n/y/b.tar.gz\n")
    assert out.stdout.splitlines()[:2] == ["a", "b.tar"]


def test_joblog_resume_and_resume_failed(run, tmp_path):
    flag, log = tmp_path / "fixed", tmp_path / "jobs.log"
    jobs = jobs_file(
        tmp_path, "echo one >> ran", f"[ -e {flag} ] || exit 3; echo two >> ran",
        "echo three >> ran",
    )  # fmt: skip
    out = run("--joblog", str(log), "-k", jobs)
    assert out.returncode == 1
    lines = log.read_text().splitlines()
    assert lines[0].split("\t") == [
        "Seq", "Host", "Starttime", "JobRuntime", "Send", "Receive", "Exitval",
        "Signal", "Command",
    ]  # fmt: skip
    rows = [line.split("\t") for line in lines[1:]]
    assert sorted((r[0], r[1], r[6], r[7]) for r in rows) == [
        ("1", ":", "0", "0"), ("2", ":", "3", "0"), ("3", ":", "0", "0"),
    ]  # fmt: skip
    assert {r[8] for r in rows} >= {"echo one >> ran"}
    assert float(rows[0][2]) > 1e9 and float(rows[0][3]) >= 0
    out = run("--joblog", str(log), "--resume", "--json", jobs)
    assert out.returncode == 0 and json.loads(out.stdout)["skipped"] == 3
    flag.touch()
    out = run("--joblog", str(log), "--resume-failed", "--json", jobs)
    assert out.returncode == 0 and json.loads(out.stdout)["skipped"] == 2
    assert (tmp_path / "ran").read_text().split().count("two") == 1
    assert (tmp_path / "ran").read_text().split().count("one") == 1
    assert log.read_text().splitlines()[-1].split("\t")[:1] == ["2"]
    out = run("--resume", jobs)
    assert out.returncode == 2 and "--joblog" in out.stderr


def test_a_job_killed_by_a_halt_counts_as_killed(run, tmp_path):
    out = run("--halt-on-error", "--json", jobs_file(tmp_path, "sleep 30", "exit 1"))
    data = json.loads(out.stdout)
    assert out.returncode == 1
    assert (data["failed"], data["killed"]) == (1, 1)


def test_the_failed_jobs_table_fits_80_columns(tmp_path):
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "wd"
    jobs = jobs_file(tmp_path, "exit 7", "echo '[bold]no markup[/bold]'; exit 5")
    pid, fd = pty.fork()
    if pid == 0:  # the child: xqute on a terminal of 80 columns
        os.execvp(sys.executable, [*XQUTE, "-w", str(deep), "-k", jobs])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 80, 0, 0))
    data = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    _, status = os.waitpid(pid, 0)
    text = data.decode(errors="replace").replace("\r", "")
    lines = [ln for ln in text.split("\n") if "\x1b" not in ln]  # not the bar
    assert os.waitstatus_to_exitcode(status) == 1
    assert all(len(ln) <= 80 for ln in lines), "\n".join(lines)
    table = text[text.index("failed jobs") :]
    assert "index" in table and "rc" in table and "outcome" in table
    assert "[bold]no markup[/bold]" in text  # output is data, not markup
    folded = "".join(ln.strip().strip("│").strip() for ln in table.split("\n"))
    assert str(deep).replace(" ", "") in folded.replace(" ", "").replace("│", "")


def test_bad_input_files_are_bad_input(run, tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"echo caf\xe9\n")
    out = run(str(bad))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "line 1 is not UTF-8" in out.stderr
    out = run(str(tmp_path / "missing.txt"))
    assert out.returncode == 2 and "does not exist" in out.stderr


# (from tests/unit/test_cli_run.py: two interpreters starting cost ~1.5 s there)
def test_installed_command_version_and_help():
    out = subprocess.run(
        [sys.executable, "-m", "xqute", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("xqute ")
    out = subprocess.run(
        ["xqute", "run", "--help"], capture_output=True, text=True, check=True
    )
    assert "--forks" in out.stdout and "--halt-on-error" in out.stdout
