"""The ssh backend without sshd: options, argv, the remote shell code (run with
local shells, since it is plain sh) and the server choice."""

import asyncio
import os
import shutil
import subprocess
import time

import psutil
import pytest

from xqute import CommandFailed, ConfigError, Xqute
from xqute.schedulers.helpers.command import run_command
from xqute.schedulers.ssh import SshScheduler, remote
from xqute.schedulers.ssh.client import ServerUnreachable, SshClient, describe_failure
from xqute.schedulers.ssh.config import CTRL_PATH_MAX, SERVER_KEYS, parse_servers
from xqute.schedulers.ssh.launcher import Launcher, LaunchFailed
from xqute.schedulers.ssh.placement import ServerPool, pick_server

SHELLS = [sh for sh in ("sh", "bash", "dash", "busybox") if shutil.which(sh)]
HOSTILE = "a b'$(touch PWNED)`touch PWNED`;touch PWNED\"\\*"


def wait_until(predicate, timeout_s=10.0):
    """Poll ``predicate``; the machine may be loaded, so be patient."""
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)


async def async_wait_until(predicate, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def make(workdir, **opts):
    opts.setdefault("servers", {"h1": {"host": "127.0.0.1"}})
    return Xqute("ssh", workdir=workdir, scheduler_opts=opts).scheduler


# ---------------------------------------------------------------- options
@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"servers": {}}, "needs at least one server"),
        ({"servers": None}, "needs at least one server"),
        ({"servers": ["h1"]}, "must be a dict of name -> settings"),
        ({"servers": {"h1": "127.0.0.1"}}, "must be a dict with at least 'host'"),
        ({"servers": {"h1": {"user": "me"}}}, "'h1' has no 'host'"),
        ({"servers": {"h 1": {"host": "x"}}}, "server name 'h 1' is invalid"),
        ({"servers": {"h1": {"host": ""}}}, "host '' must be a non-empty string"),
        ({"servers": {"h1": {"host": "-oProxyCommand=x"}}}, "may not start with '-'"),
        ({"servers": {"h1": {"host": "a b"}}}, "host 'a b' is invalid"),
        ({"servers": {"h1": {"host": "x", "user": "a@b"}}}, "user 'a@b' is invalid"),
        ({"servers": {"h1": {"host": "x", "port": 0}}}, "port 0 must be an integer"),
        ({"servers": {"h1": {"host": "x", "port": 70000}}}, "from 1 to 65535"),
        ({"servers": {"h1": {"host": "x", "port": "22"}}}, "port '22' must be"),
        ({"servers": {"h1": {"host": "x", "port": True}}}, "port True must be"),
        ({"servers": {"h1": {"host": "x", "ctrl_persist": 0}}}, "ctrl_persist 0"),
        ({"servers": {"h1": {"host": "x", "max_sessions": 0}}}, "max_sessions 0"),
        ({"servers": {"h1": {"host": "x", "args": "-v"}}}, "must be a list of str"),
        ({"servers": {"h1": {"host": "x", "args": ["-o", 5]}}}, "must all be str"),
        (
            {"servers": {"h1": {"host": "x", "keyfile": "/no/such/key"}}},
            "keyfile '/no/such/key' does not exist",
        ),
        (
            {"servers": {"h1": {"host": "x", "ctrl_dir": "/tmp/" + "d" * 80}}},
            f"too long: the control socket path would be 100 bytes, and OpenSSH"
            f" allows at most {CTRL_PATH_MAX}",
        ),
        (
            {"servers": {"h1": {"host": "x", "ctrl_dir": "/tmp/a b"}}},
            "may not contain spaces",
        ),
        ({"ssh": ""}, "must be the ssh client's name or path"),
        ({"command_timeout_s": 0}, "command_timeout_s 0 must be a positive"),
    ],
)
def test_bad_options_are_rejected_at_construction(workdir, opts, message):
    with pytest.raises(ConfigError) as info:
        make(workdir, **opts)
    assert message in str(info.value)
    assert not workdir.exists()  # nothing was done before the check


def test_unknown_keys_list_the_valid_ones(workdir):
    with pytest.raises(ConfigError) as info:
        make(workdir, servers={"h1": {"host": "x", "hostname": "y"}})
    msg = str(info.value)
    assert "'hostname' is not allowed" in msg
    for key in ("host", "user", "port", "keyfile", "ctrl_persist", "ctrl_dir"):
        assert repr(key) in msg
    with pytest.raises(ConfigError) as info:
        make(workdir, sever={})
    assert "'sever'" in str(info.value) and "'servers'" in str(info.value)
    described = SshScheduler.backend_options["servers"]
    assert all(key in described for key in SERVER_KEYS)


def test_failures_are_described_by_their_last_line():
    def failed(rc, stdout="", stderr=""):
        return describe_failure(CommandFailed(["ssh"], rc, stdout, stderr))

    assert failed(1, stderr="warn\nbash: x: not found\n\n") == (
        "a command exited with 1: bash: x: not found"
    )
    assert failed(2, "out\n", "  \n") == "a command exited with 2: out"
    assert failed(3) == "a command exited with 3"
    assert describe_failure(ServerUnreachable("h1", "refused")) == "refused"


def test_valid_servers_and_the_older_spelling(workdir, tmp_path):
    key = tmp_path / "key"
    key.write_text("k")
    servers = {
        "server1": {
            "user": "u",
            "host": "server1.example.com",
            "port": 22,
            "keyfile": str(key),
            "ctrl_persist": 600,
            "ctrl_dir": str(tmp_path),
        },
        "server2": {"user": "u", "host": "server2.example.com"},
    }
    with pytest.warns(DeprecationWarning) as warned:
        xqute = Xqute(
            "ssh",
            workdir=workdir,
            scheduler_forks=100,
            ssh="/usr/bin/ssh",
            ssh_servers=servers,
        )
    messages = " ".join(str(w.message) for w in warned)
    assert "scheduler_forks" in messages and "ssh, ssh_servers" in messages
    sched = xqute.scheduler
    assert xqute.forks == 100 and sched.ssh == "/usr/bin/ssh"
    assert list(sched.servers) == ["server1", "server2"]
    s1 = sched.servers["server1"]
    assert (s1.user, s1.port, s1.keyfile, s1.ctrl_persist) == ("u", 22, str(key), 600)
    assert sched.servers["server2"].target == "u@server2.example.com"


# ---------------------------------------------------------------- argv
def test_argv_order_quoting_and_control_path(tmp_path):
    key = tmp_path / "key"
    key.write_text("k")
    (server,) = parse_servers(
        {
            "h1": {
                "host": "example.org",
                "user": "me",
                "port": 2200,
                "keyfile": str(key),
                "ctrl_persist": 30,
                "args": ["-o", "ConnectTimeout=2"],
            }
        }
    ).values()
    client = SshClient("ssh", server, 30)
    client.ctrl_path = "/tmp/xq-abcdefgh/s0"
    cmd = "echo 'a b'; rm -rf /"
    argv = client.argv(cmd)
    assert argv[0] == "ssh" and argv[-3:] == ["--", "example.org", cmd]
    opts = [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
    assert opts[:4] == [
        "BatchMode=yes",
        "ControlMaster=auto",
        "ControlPath=/tmp/xq-abcdefgh/s0",
        "ControlPersist=30",
    ]
    # the user's args come before the defaults they override (first value wins)
    assert opts.index("ConnectTimeout=2") < opts.index("ConnectTimeout=5")
    assert ["-i", str(key)] == argv[argv.index("-i") : argv.index("-i") + 2]
    assert argv[argv.index("-l") : argv.index("-l") + 4] == ["-l", "me", "-p", "2200"]
    assert client.control_argv("exit")[-4:] == ["-O", "exit", "--", "example.org"]
    client.ctrl_path = "/tmp/100%/s0"
    assert "ControlPath=/tmp/100%%/s0" in client.argv("true")


def test_longest_allowed_ctrl_dir_fits_the_socket_limit(tmp_path):
    for length in range(5, 90):
        ctrl_dir = "/" + "d" * (length - 1)
        try:
            (server,) = parse_servers(
                {"h": {"host": "x", "ctrl_dir": ctrl_dir}}
            ).values()
        except ConfigError:
            break
    # the socket made at start: <ctrl_dir>/xq-XXXXXXXX/s0, plus ssh's 17-byte suffix
    socket = f"{server.ctrl_dir}/xq-abcdefgh/s0"
    assert len(socket) == CTRL_PATH_MAX and len(socket) + 17 < 108


# ---------------------------------------------------------------- remote code
def run_sh(shell, cmd, **kw):
    argv = ["busybox", "sh"] if shell == "busybox" else [shell]
    return subprocess.run(
        [*argv, "-c", cmd], capture_output=True, text=True, timeout=10, **kw
    )


@pytest.mark.parametrize("shell", SHELLS)
def test_launch_status_kill_with_local_shells(shell, tmp_path):
    meta = tmp_path / HOSTILE
    meta.mkdir()
    script = meta / "job.sh"
    script.write_text(f"sleep 30.{len(shell)}7 & sleep 30.{len(shell)}7\n")
    nonce = meta / "job.launch"
    nonce.write_text("h1-0123\n")
    spec = remote.LaunchSpec("7", str(script), str(meta), str(nonce), "h1-0123")
    proc = run_sh(shell, remote.launch_command([spec]), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (key, (pid, start)), *_ = remote.parse_launch(proc.stdout).items()
    assert key == "7"
    # the launch prints the pid before setsid() may have run
    wait_until(lambda: os.getsid(pid) == pid)
    assert start.isdigit() and os.getpgid(pid) == pid == os.getsid(pid)
    pair = f"{pid}:{start}"
    status = remote.status_command([pair, f"{pid}:1", "999999999:1", f"{pid}:"])
    out = run_sh(shell, status).stdout
    assert remote.parse_status(out) == {
        pair: True,
        f"{pid}:1": False,  # the pid with another start time: reused
        "999999999:1": False,
        f"{pid}:": False,
    }
    kill = run_sh(shell, remote.kill_command([f"{pid}:1", pair], 0.2))
    assert kill.stdout.splitlines() == [f"killed {pair}"]
    wait_until(lambda: not remote.parse_status(run_sh(shell, status).stdout)[pair])
    assert not remote.parse_status(run_sh(shell, status).stdout)[pair]
    assert not list(tmp_path.rglob("PWNED"))


def test_one_call_launches_many_and_refuses_stale_or_unseen(tmp_path):
    script, nonce = tmp_path / "job.sh", tmp_path / "job.launch"
    script.write_text("touch RAN\n")
    nonce.write_text("abandoned\n")
    specs = [
        remote.LaunchSpec("1", str(script), str(tmp_path), str(nonce), "h1-1"),
        remote.LaunchSpec("2", str(script), str(tmp_path / HOSTILE), "/x", "h1-2"),
    ]
    good = tmp_path / "good"
    good.mkdir()
    (good / "n").write_text("h1-3\n")
    (good / "job.sh").write_text("echo $$ > pid; sleep 0.1\n")
    specs.append(
        remote.LaunchSpec("3", str(good / "job.sh"), str(good), str(good / "n"), "h1-3")
    )
    proc = run_sh("sh", remote.launch_command(specs), cwd=good)
    assert proc.returncode == 0, proc.stderr
    result = remote.parse_launch(proc.stdout)
    assert result["1"] == "stale" and result["2"] == "unseen"
    assert isinstance(result["3"], tuple)
    wait_until((good / "pid").exists)
    assert (good / "pid").exists()  # the wrapper ran (as the leader's child)
    time.sleep(0.1)
    assert not (good / "RAN").exists() and not list(tmp_path.rglob("PWNED"))
    with pytest.raises(ValueError):
        remote.launch_command([remote.LaunchSpec("1;x", "s", "m", "n", "o")])


def test_builders_accept_only_pid_start_pairs():
    for bad in ["1;reboot", "$(id):1", "1:2 3", "12"]:
        with pytest.raises(ValueError):
            remote.status_command([bad])
        with pytest.raises(ValueError):
            remote.kill_command([bad], 1)
    assert remote.status_command([]) == "true"


def test_parsers_skip_noise():
    noisy = "Welcome!\n12:34 1\n13: 0\nbogus 1\n 99:1 0 \n"
    assert remote.parse_status(noisy) == {"12:34": True, "13:": False, "99:1": False}
    launched = "motd\nxqute-launched 4 42:777\nxqute-launched 5 43:\n"
    launched += "xqute-launched 6 x:1\nxqute-stale 7\nxqute-unseen 8\n"
    assert remote.parse_launch(launched) == {
        "4": (42, "777"),
        "5": (43, ""),
        "7": "stale",
        "8": "unseen",
    }
    check = "hi\nxqute-check workdir=ok\nxqute-check bash=missing\n"
    assert remote.parse_check(check) == {"workdir": True, "bash": False}


def test_check_command_runs(tmp_path):
    marker = tmp_path / HOSTILE
    out = run_sh("sh", remote.check_command(str(marker))).stdout
    assert remote.parse_check(out)["workdir"] is False
    marker.write_text("x")
    checks = remote.parse_check(run_sh("sh", remote.check_command(str(marker))).stdout)
    assert checks == dict.fromkeys(["workdir", "bash", "setsid", "nohup", "proc"], True)


def test_jid_round_trip():
    jid = remote.parse_jid("h-1.x:123:456")
    assert jid == remote.Jid("h-1.x", 123, "456") and str(jid) == "h-1.x:123:456"
    assert jid.pair == "123:456"
    assert remote.parse_jid("h1:123:") == remote.Jid("h1", 123, "")
    for bad in ["123", "h1:abc:1", ":1:2", "h1:1:x"]:
        assert remote.parse_jid(bad) is None


# ---------------------------------------------------------------- placement
def test_pick_server_least_loaded_then_round_robin():
    names = ["a", "b", "c"]
    up = set(names)
    assert pick_server(names, up, {}, None) == "a"
    assert pick_server(names, up, {}, "a") == "b"
    assert pick_server(names, up, {}, "c") == "a"
    assert pick_server(names, up, {"a": 2, "b": 1, "c": 2}, "b") == "b"
    assert pick_server(names, up, {"a": 1, "b": 0, "c": 0}, "b") == "c"
    assert pick_server(names, {"a", "c"}, {"a": 5}, "a") == "c"
    assert pick_server(names, set(), {}, "a") is None
    assert pick_server(names, up, {}, "gone") == "a"


def test_server_pool_spreads_and_takes_servers_out():
    pool = ServerPool(("h1", "h2"))
    assert [pool.take() for _ in range(4)] == ["h1", "h2", "h1", "h2"]
    pool.release("h1")
    assert pool.take() == "h1"  # fewest running
    assert pool.mark_down("h2", "Connection refused")
    assert not pool.mark_down("h2", "again")  # already down: no second log line
    assert [pool.take() for _ in range(2)] == ["h1", "h1"]
    assert pool.describe_down() == "h2 (Connection refused)"
    pool.mark_down("h1", "timed out")
    assert pool.take() is None
    pool.mark_up("h2")
    assert pool.take() == "h2" and pool.up() == ["h2"]


# ---------------------------------------------------------------- launcher
class LocalClient:
    """Stands in for SshClient: runs the remote code with the local sh."""

    def __init__(self, home, delay_s=0.0):
        (self.server,) = parse_servers({"h1": {"host": "x"}}).values()
        self.commands = []
        self.kinds = []
        self.home = str(home)  # where ssh would start the command
        self.delay_s = delay_s

    async def run(self, cmd, *, kind, timeout_s=None):
        self.commands.append(cmd)
        self.kinds.append(kind)
        await asyncio.sleep(self.delay_s)
        return await run_command(["sh", "-c", cmd], cwd=self.home)


def job_files(tmp_path, index, body):
    meta = tmp_path / str(index)
    meta.mkdir()
    (meta / "job.sh").write_text(body.replace("META", str(meta)))
    (meta / "job.launch").write_text(f"h1-{index}\n")
    return remote.LaunchSpec(
        str(index),
        str(meta / "job.sh"),
        str(meta),
        str(meta / "job.launch"),
        f"h1-{index}",
    )


async def test_launcher_sends_concurrent_launches_in_one_call(tmp_path):
    client = LocalClient(tmp_path)
    launcher = Launcher(client)
    specs = [job_files(tmp_path, i, "echo $$ > META/out\n") for i in range(5)]
    specs.append(remote.LaunchSpec("9", "/x/job.sh", str(tmp_path / "no"), "/x/n", "n"))
    results = await asyncio.gather(
        *(launcher.launch(s) for s in specs), return_exceptions=True
    )
    assert len(client.commands) == 1
    assert all(isinstance(r, tuple) and r[1].isdigit() for r in results[:5])
    assert isinstance(results[5], LaunchFailed) and results[5].unseen
    assert f"the job folder {tmp_path / 'no'} is not visible on ssh server h1" in str(
        results[5]
    )
    # a lone launch later goes out at once, in a call of its own
    lone = job_files(tmp_path, 7, "true\n")
    assert isinstance(await launcher.launch(lone), tuple)
    assert client.kinds == ["launch", "launch"]
    await launcher.aclose()


async def test_launcher_kills_a_launch_whose_submitter_was_cancelled(tmp_path):
    client = LocalClient(tmp_path, delay_s=0.2)
    launcher = Launcher(client)
    spec = job_files(tmp_path, 0, "sleep 30.913\n")
    task = asyncio.ensure_future(launcher.launch(spec))
    await asyncio.sleep(0.05)  # the launch call is under way
    task.cancel()
    await async_wait_until(lambda: len(client.commands) == 2)
    assert client.commands[1].startswith("k=")  # the kill of the orphan
    assert client.kinds == ["launch", "kill"]
    script = str(tmp_path / "0" / "job.sh")

    def alive():
        found = []
        for proc in psutil.process_iter(["cmdline", "status"]):
            cmdline = " ".join(proc.info["cmdline"] or ())
            if proc.info["status"] != "zombie" and (
                script in cmdline or "30.913" in cmdline
            ):
                found.append(proc)
        return found

    await async_wait_until(lambda: not alive())
    assert alive() == []
    await launcher.aclose()
