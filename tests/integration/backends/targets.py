"""The backends the shared suite runs against, one ``Target`` each.

A target says how to reach a real backend from a test: which service fixtures
it needs, the engine's scheduler options, how a user cancels a job outside
xqute, what the backend still lists, and the exit codes it gives killed jobs.
Every scenario in ``test_scenarios.py`` runs once per entry of ``TARGETS``;
adding a backend is one ``Target`` subclass and one entry there.

Each test gets a job-name prefix of its own (``self.prefix``); whatever the
backend still lists under it afterwards is killed (``cleanup``). All jobs of
all targets run on this machine (the clusters are single-node, the ssh servers
on loopback, containers and the gcloud simulator local), so a scenario can also
check that no process of its jobs is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, ClassVar

import backend_services as bs
import psutil
import pytest
from leftovers import kill_leftovers

from xqute import Job, JobOutcome, Xqute

#: polling options of every target's engine (the backend may add its own)
FAST = {"poll_interval_s": 0.3, "poll_interval_max_s": 1.0, "kill_grace_s": 1}


class Target:
    """One backend as the shared scenarios see it."""

    #: the test id, and the scheduler name given to ``Xqute``
    name: ClassVar[str]
    scheduler: ClassVar[str]
    #: the pytest marker of the service it needs (None: no service)
    marker: ClassVar[str | None] = None
    #: rc a running job gets when xqute kills it (halt, a signal)
    killed_rc: ClassVar[int] = 143
    #: rc of a job xqute killed that ignores SIGTERM (the wrapper records 143
    #: when it can act on the TERM itself)
    stubborn_rc: ClassVar[int | None] = 143
    #: rc of a job cancelled outside xqute while it runs
    cancelled_rc: ClassVar[int] = 143
    #: what the reason of a job cancelled outside xqute says (a regex), and
    #: what its stderr says
    cancelled_reason: ClassVar[str] = "^killed$"  # the wrapper's record
    cancelled_stderr: ClassVar[str] = ""
    #: resources that keep a job queued in the backend forever (None: the
    #: backend starts every job at once)
    never_fits: ClassVar[dict[str, Any] | None] = None
    #: rc of a job xqute killed while it was queued
    killed_queued_rc: ClassVar[int | None] = None

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.request = request
        self.tmp_path = tmp_path
        self.prefix = f"xqb{uuid.uuid4().hex[:6]}"
        #: digits unique to the test, for commands: ``sleep 300.<token>``
        self.token = f"{uuid.uuid4().int % 10**6:06d}"

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        """Make sure the service runs (skip or fail the test if it cannot)."""

    def cleanup(self) -> None:
        """Kill what the test left in the backend under its prefix."""

    def options(self) -> dict[str, Any]:
        """Scheduler options of this target (on top of ``FAST``); JSON-able."""
        return {}

    def workdir(self, name: str = "xq") -> str:
        return str(self.tmp_path / name)

    def files(self, workdir: str) -> Path:
        """Where the files of a workdir are, on this machine."""
        return Path(workdir)

    def engine(self, workdir: str | None = None, **kwargs: Any) -> Xqute:
        opts = {**FAST, **self.options(), **kwargs.pop("scheduler_opts", {})}
        kwargs.setdefault("jobname_prefix", self.prefix)
        return Xqute(
            self.scheduler,
            workdir=workdir or self.workdir(),
            scheduler_opts={**opts, **self.live_options()},
            **kwargs,
        )

    def live_options(self) -> dict[str, Any]:
        """Options that are Python objects (not JSON), for engines in this process."""
        return {}

    def driver_config(self, workdir: str) -> dict[str, Any]:
        """What ``DRIVER`` (conftest) needs to build the same engine in a process
        of its own."""
        return {
            "scheduler": self.scheduler,
            "workdir": workdir,
            "prefix": self.prefix,
            "opts": {**FAST, **self.options()},
        }

    # ------------------------------------------------------------------ backend
    def cancel_outside(self, jid: str) -> None:
        """Cancel a running job the way a user of the backend would."""
        raise NotImplementedError

    def alive(self, ids: list[str]) -> list[str]:
        """Those of ``ids`` the backend still lists as queued or running."""
        raise NotImplementedError

    def check_job_name(self, jid: str, name: str) -> None:
        """Assert the backend recorded ``name`` as the job's name, whole (where
        it keeps names as given: others sanitize them)."""


def run(*argv: str, check: bool = False) -> str:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=120, check=check
    ).stdout


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


# ---------------------------------------------------------------------- local
class Local(Target):
    name = scheduler = "local"
    # the command runs in the foreground: the wrapper's trap waits for it, and
    # the whole group is SIGKILLed after the grace
    stubborn_rc = 137

    def cancel_outside(self, jid: str) -> None:
        _kill_group(int(jid))  # ``kill -- -PGID``: the wrapper leads its group

    def alive(self, ids: list[str]) -> list[str]:
        return [i for i in ids if _running(int(i))]


# ---------------------------------------------------------------------- slurm
class Slurm(Target):
    name = scheduler = "slurm"
    marker = "slurm"
    cancelled_reason = r"^cancelled in Slurm outside xqute \(scancel\)$"
    cancelled_stderr = "CANCELLED AT"  # slurmstepd's line
    never_fits = {"cpus": 8}  # 8 CPUs, the suite's other jobs use some
    killed_queued_rc = 143  # cancelled while pending: the driver writes it

    def setup(self) -> None:
        self.request.getfixturevalue("slurm_cluster")

    def jobs(self) -> dict[str, str]:
        lines = run("squeue", "-h", "-r", "-o", "%i|%j").splitlines()
        return dict(line.partition("|")[::2] for line in lines)

    def cleanup(self) -> None:
        ids = [i for i, name in self.jobs().items() if name.startswith(self.prefix)]
        if ids:
            run("scancel", *ids)

    def cancel_outside(self, jid: str) -> None:
        run("scancel", jid, check=True)

    def alive(self, ids: list[str]) -> list[str]:
        """Those of ``ids`` still pending, running or completing."""
        out = run(
            "squeue", "-h", "-r", "-t", "PD,R,CG,S", "--jobs=" + ",".join(ids),
            "-o", "%i",
        )  # fmt: skip
        return out.split()

    def show(self, jid: str) -> str:
        return run("scontrol", "show", "job", jid)

    def check_job_name(self, jid: str, name: str) -> None:
        shown = self.show(jid)
        assert f"JobName={name}" in shown
        assert "TimeLimit=00:01:00" not in shown  # no "--time=1" got through


# ---------------------------------------------------------------------- sge
class Sge(Target):
    name = scheduler = "sge"
    marker = "sge"
    killed_rc = 137  # qdel is a SIGKILL: the driver writes the rc
    stubborn_rc = 137
    cancelled_rc = 137
    cancelled_reason = "deleted with qdel outside xqute"  # from qacct
    cancelled_stderr = "xqute: sge: cancelled: SIGKILLed, not by xqute"
    never_fits = {"cpus": 50}
    killed_queued_rc = 137

    def setup(self) -> None:
        self.request.getfixturevalue("sge_cluster")

    def options(self) -> dict[str, Any]:
        # a job deleted while queued leaves no trace: it is resolved when the lost
        # grace ends (SGE flushes accounting every 1 s on the test cluster)
        return {"lost_grace_s": 3}

    def jobs(self) -> dict[str, str]:
        """{job number: full name} of every job in qstat."""
        root = ET.fromstring(run("qstat", "-xml"))
        return {
            e.findtext("JB_job_number"): e.findtext("JB_name")
            for e in root.iter("job_list")
        }

    def cleanup(self) -> None:
        ids = [i for i, name in self.jobs().items() if name.startswith(self.prefix)]
        if ids:
            run("qdel", *ids)

    def cancel_outside(self, jid: str) -> None:
        run("qdel", jid, check=True)

    def alive(self, ids: list[str]) -> list[str]:
        numbers = self.jobs()
        return [i for i in ids if i.split(".")[0] in numbers]

    def show(self, jid: str) -> str:
        return run("qstat", "-j", jid.split(".")[0])


# ---------------------------------------------------------------------- htcondor
class HTCondor(Target):
    """The single-node HTCondor pool. It refuses jobs from root, so its tools
    submit as a plain user; the pool runs that user's jobs as root, as the
    jobs of this root driver (scripts/services/htcondor.sh). Each test's
    workdirs are under the script's shared folder. Native ids are
    ``Cluster.Proc``."""

    name = scheduler = "htcondor"
    marker = "htcondor"
    # the wrapper's record, or the pool's word when a poll saw the removal first
    cancelled_reason = "^killed$|condor_rm"
    never_fits = {"cpus": 64}  # matches no slot: stays idle
    killed_queued_rc = 143  # removed while idle: the driver writes it
    SHARED: ClassVar[Path] = Path(
        os.environ.get("HTCONDOR_SHARED", "/tmp/xqute-htcondor")
    )

    def setup(self) -> None:
        self.request.getfixturevalue("htcondor_pool")
        self.shared = self.SHARED / "tests" / uuid.uuid4().hex[:8]
        self.shared.mkdir(parents=True)

    def cleanup(self) -> None:
        ids = [i for i, name in self.jobs().items() if name.startswith(self.prefix)]
        if ids:
            run("condor_rm", *ids)
        kill_leftovers(str(self.shared))
        shutil.rmtree(self.shared, ignore_errors=True)

    def workdir(self, name: str = "xq") -> str:
        return str(self.shared / name)

    def ads(self, *ids: str, attrs: str = "ClusterId,ProcId,JobBatchName") -> list:
        out = run("condor_q", *ids, "-json", "-attributes", attrs)
        return json.loads(out) if out.strip() else []

    def jobs(self) -> dict[str, str]:
        """{C.P: batch name} of every job in the queue (the submit user's)."""
        return {
            f"{a['ClusterId']}.{a['ProcId']}": a.get("JobBatchName", "")
            for a in self.ads()
        }

    def cancel_outside(self, jid: str) -> None:
        run("condor_rm", jid, check=True)

    def alive(self, ids: list[str]) -> list[str]:
        """Those of ``ids`` still in the queue (idle, running, held, leaving)."""
        listed = self.jobs()
        return [i for i in ids if i in listed]


# ---------------------------------------------------------------------- ssh
class Ssh(Target):
    """Two loopback sshd servers; a job's native id is ``server:pid:start``."""

    name = scheduler = "ssh"
    marker = "ssh"
    # the remote SIGKILL after the grace leaves the wrapper no time to write one
    stubborn_rc = None

    def setup(self) -> None:
        self.sshd: bs.Sshd = self.request.getfixturevalue("sshd")

    def options(self) -> dict[str, Any]:
        return {"servers": self.sshd.servers()}

    def cancel_outside(self, jid: str) -> None:
        _kill_group(int(jid.split(":")[1]))  # on the server: ``kill -- -PGID``

    def alive(self, ids: list[str]) -> list[str]:
        return [i for i in ids if _running(int(i.split(":")[1]))]


# ---------------------------------------------------------------------- containers
class Container(Target):
    """A container engine; the native id is the container's name."""

    scheduler = "container"
    marker = "container"
    engine_bin: ClassVar[str]

    def setup(self) -> None:
        found = self.request.getfixturevalue("container_services")
        services = self.request.getfixturevalue("services")

        def check() -> str | None:
            if self.engine_bin in found["engines"]:
                return None
            return found["error"] or f"{self.engine_bin} did not pass the smoke test"

        services.require(self.engine_bin, check)
        self.image = str(found["image"])

    def options(self) -> dict[str, Any]:
        return {"bin": self.engine_bin, "image": self.image}

    def cleanup(self) -> None:
        names = run(
            self.engine_bin, "ps", "--all", "--quiet", f"--filter=name=^{self.prefix}-"
        ).split()
        if names:
            now = ["--time=0"] if self.engine_bin == "podman" else []
            run(self.engine_bin, "rm", "--force", *now, *names)

    def cancel_outside(self, jid: str) -> None:
        run(self.engine_bin, "stop", "--time=1", jid, check=True)

    def alive(self, ids: list[str]) -> list[str]:
        running = run(self.engine_bin, "ps", "--format={{.Names}}").split()
        return [i for i in ids if i in running]


class Podman(Container):
    name = engine_bin = "podman"


class Docker(Container):
    name = engine_bin = "docker"


# ---------------------------------------------------------------------- gbatch
class Gbatch(Target):
    """The gcloud batch simulator with a gs:// workdir (a local bucket folder)."""

    name = scheduler = "gbatch"
    marker = "gbatch"
    # the wrapper's record, or Batch's word when a poll saw the deletion first
    cancelled_reason = "^(killed|the Batch job was deleted)$"
    WHERE: ClassVar[dict[str, str]] = {"project": "xq-proj", "location": "us-central1"}

    def setup(self) -> None:
        services = self.request.getfixturevalue("services")
        services.require("gcloud simulator", bs.check_gcloud_simulator)
        self.buckets, self.client = self.request.getfixturevalue("gcs")
        monkeypatch = self.request.getfixturevalue("monkeypatch")
        self.state = self.tmp_path / "sim-state"
        for key, value in bs.gcloud_sim_env(self.state, self.buckets).items():
            monkeypatch.setenv(key, value)
        for key in ("CLOUDSDK_CORE_PROJECT", "CLOUDSDK_BATCH_LOCATION"):
            monkeypatch.delenv(key, raising=False)

    def cleanup(self) -> None:
        run(str(bs.GCLOUD), "simulator", "reap", "--purge")

    def options(self) -> dict[str, Any]:
        # a grace shorter than the simulator's own (1 s, see gcloud_sim_env): the
        # wrapper of a job that ignores SIGTERM records its rc before Batch's KILL
        return {**self.WHERE, "kill_grace_s": 0.3}

    def live_options(self) -> dict[str, Any]:
        return {"gs_client": self.client}

    def workdir(self, name: str = "xq") -> str:
        return f"gs://{bs.GCS_BUCKET}/{self.prefix}/{name}"

    def files(self, workdir: str) -> Path:
        return self.buckets / workdir.removeprefix("gs://")

    def driver_config(self, workdir: str) -> dict[str, Any]:
        return {**super().driver_config(workdir), "gcs": str(self.buckets)}

    def _gcloud(self, *args: str) -> subprocess.CompletedProcess[str]:
        where = [f"--{k}={v}" for k, v in self.WHERE.items()]
        return subprocess.run(
            [str(bs.GCLOUD), "batch", "jobs", *args, *where],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def cancel_outside(self, jid: str) -> None:
        proc = self._gcloud("delete", jid, "--quiet")
        assert proc.returncode == 0, proc.stderr

    def alive(self, ids: list[str]) -> list[str]:
        out = []
        for jid in ids:
            proc = self._gcloud("describe", jid, "--format=json")
            if proc.returncode != 0:
                continue  # deleted: gone
            state = json.loads(proc.stdout)["status"]["state"]
            if state in ("QUEUED", "SCHEDULED", "RUNNING"):
                out.append(jid)
        return out


# ---------------------------------------------------------------------- queue
class Queue(Target):
    """``Xqute(scheduler="queue")`` on a real queue daemon (local jobs)."""

    name = scheduler = "queue"
    marker = "service"
    cancelled_reason = "^cancelled while running$"
    never_fits = {"cpus": 64}
    killed_queued_rc = None  # cancelled while pending: it never ran

    def setup(self) -> None:
        from xqute.queue import SchedulerService, SqliteJobScheduler

        self.db_path = self.tmp_path / "queue.db"
        self.service = SchedulerService(
            self.db_path, 8, cpus=8, backend_opts={"kill_grace_s": 1}
        )
        self.service.start()
        self.store = SqliteJobScheduler(self.db_path)

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            self.service.stop(now=True, timeout_s=15)
        self.store.close()

    def options(self) -> dict[str, Any]:
        return {"db_path": str(self.db_path)}

    def cancel_outside(self, jid: str) -> None:
        assert self.store.cancel_job(int(jid)) == "cancelling"

    def check_job_name(self, jid: str, name: str) -> None:
        assert self.store.get_job_status(int(jid))["name"] == name

    def alive(self, ids: list[str]) -> list[str]:
        states = self.store.get_job_states([int(i) for i in ids])
        return [i for i in ids if states[int(i)]["state"] in ("pending", "running")]


#: every backend the shared scenarios run against (``pytest -k`` by name)
TARGETS: list[type[Target]] = [
    Local,
    Slurm,
    Sge,
    HTCondor,
    Ssh,
    Podman,
    Docker,
    Gbatch,
    Queue,
]


async def status_calls(
    target: Target, tmp_path: Path, tool: str, n: int, command: Any
) -> list[str]:
    """Run ``n`` jobs with ``tool`` (the status command) logging its calls:
    one call per poll cycle, not one per job. Returns the calls' arguments."""
    wrapper, log = bs.logging_wrapper(tool, tmp_path)
    xqute = target.engine(
        forks=n, scheduler_opts={tool: str(wrapper), "poll_interval_s": 0.5}
    )
    for _ in range(n):
        await xqute.feed(command)
    t0 = time.monotonic()
    await asyncio.wait_for(xqute.run_until_complete(), 90)
    elapsed = time.monotonic() - t0
    calls = log.read_text().splitlines()
    assert {j.rc for j in xqute.jobs} == {0}
    assert len(calls) <= elapsed / 0.5 + 2  # one per cycle, not one per job
    return calls


async def array_jobs(target: Target, n: int, failing: int, echo: str) -> list[Job]:
    """``n`` jobs fed together with ``array=True`` (one retry, no backoff):
    each prints ``task <i> <echo>``; job ``failing`` fails its first trial, so
    its retry is submitted alone. All must succeed; returns the jobs."""
    xqute = target.engine(
        forks=n,
        error_strategy="retry",
        num_retries=1,
        retry_backoff_s=0,
        scheduler_opts={"array": True},
    )
    retried = '[ -e "$XQUTE_JOB_METADIR/job.retry" ]'
    for i in range(n):
        await xqute.feed(f"echo task {i}{echo}; {retried} || exit {int(i == failing)}")
    await asyncio.wait_for(xqute.run_until_complete(), 90)
    assert [j.outcome for j in xqute.jobs] == [JobOutcome.SUCCEEDED] * n
    return xqute.jobs
