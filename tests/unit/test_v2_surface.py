"""xqute 2.x's surface, as its clients (pipen) use it, over this engine.

pipen's own test suite runs in tests/integration/pipen (marker ``pipen``); these
tests pin each piece of the surface through the public API, without pipen.
"""

import importlib.metadata
import logging
import pickle

import pytest

import xqute
from xqute import Job, JobStatus, Xqute
from xqute.errors import ConfigTypeError
from xqute.path import CloudPath, MountedPath, SpecPath
from xqute.schedulers.local_scheduler import LocalScheduler
from xqute.schedulers.scheduler import Scheduler as V2Scheduler


def test_version_is_on_the_2x_line_everywhere():
    assert xqute.__version__.startswith("2.")
    assert importlib.metadata.version("xqute") == xqute.__version__


def test_defaults_and_logger_under_their_2x_names():
    from xqute import defaults
    from xqute.utils import logger

    assert defaults.DEFAULT_WORKDIR_NAME == ".xqute"
    assert defaults.JobErrorStrategy.IGNORE == "ignore"
    assert logger is logging.getLogger("xqute") is xqute.logger


@pytest.mark.parametrize(
    ("path", "derive", "spec", "mounted"),
    [
        (SpecPath("/a", mounted="/m"), lambda p: p / "b" / "c", "/a/b/c", "/m/b/c"),
        (SpecPath("/a/b", mounted="/m/b"), lambda p: p.parent, "/a", "/m"),
        (
            SpecPath("/a/b", mounted="/m/b"),
            lambda p: p.joinpath("x", "y"),
            "/a/b/x/y",
            "/m/b/x/y",
        ),
        (SpecPath("/a/f.txt"), lambda p: p.with_suffix(".gz"), "/a/f.gz", "/a/f.gz"),
        (
            SpecPath("/a/f.txt", mounted="/m/g.txt"),
            lambda p: p.with_name("h"),
            "/a/h",
            "/m/h",
        ),
        (
            SpecPath("gs://b/wd", mounted="/mnt/disks/wd"),
            lambda p: p / "0",
            "gs://b/wd/0",
            "/mnt/disks/wd/0",
        ),
        (SpecPath("/a", mounted="gs://b/a"), lambda p: p / "x", "/a/x", "gs://b/a/x"),
    ],
)
def test_spec_and_mounted_paths_move_together(path, derive, spec, mounted):
    out = derive(path)
    assert isinstance(out, SpecPath)
    assert (str(out), str(out.mounted)) == (spec, mounted)
    assert isinstance(out.mounted, MountedPath)
    assert str(out.mounted.spec) == spec
    back = pickle.loads(pickle.dumps(out))
    assert back == out and str(back.mounted) == mounted


def test_paths_compare_by_both_sides_and_keep_their_kind():
    a = MountedPath("/m/x", spec="/a/x")
    assert a == MountedPath("/m/x", spec="/a/x") != MountedPath("/m/x", spec="/b/x")
    assert a.is_mounted() and not MountedPath("/m/x").is_mounted()
    assert hash(a) == hash(MountedPath("/m/x", spec="/a/x"))
    assert isinstance(MountedPath("gs://b/k"), CloudPath)
    assert not isinstance(SpecPath("/tmp/x"), CloudPath)
    assert repr(SpecPath("/a", mounted="/m")) == "SpecPath('/a', mounted='/m')"
    assert SpecPath(SpecPath("/a", mounted="/m")).mounted == MountedPath(
        "/m", spec="/a"
    )


async def test_spec_paths_have_the_async_methods_clients_await(tmp_path):
    path = SpecPath(tmp_path) / "d" / "f.txt"
    await path.parent.a_mkdir(parents=True, exist_ok=True)
    await path.a_write_text("hi")
    assert await path.a_read_text() == "hi" and await path.a_exists()
    assert await path.mounted.get_fspath() == str(tmp_path / "d" / "f.txt")


class ClientJob(Job):
    """A client's Job, declared the way pipen declares its own."""

    __slots__ = (*Job.__slots__, "proc", "outdir")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.proc = None
        self.outdir = None


class ClientLocal(LocalScheduler):
    job_class = ClientJob


async def test_a_client_creates_prepares_then_feeds_its_jobs(tmp_path):
    xq = Xqute(
        ClientLocal,
        workdir=tmp_path / "wd",
        error_strategy="retry",
        num_retries=2,
        scheduler_opts={"n": 1, "prescript": "echo pre", "postscript": "echo post"},
    )
    sched = xq.scheduler
    assert sched.subm_batch == xq.forks and sched.config == {"n": 1}
    sched.workdir = sched.workdir / "Proc"  # what pipen's init_proc does
    await xq.run_until_complete(keep_feeding=True)
    job = await sched.create_job(0, "")  # the command comes later
    assert isinstance(job, ClientJob) and job.cmd == ()
    assert job.metadir.is_dir() and str(job.metadir) == str(tmp_path / "wd/Proc/0")
    assert (job._error_retry, job._num_retries) == (True, 2)
    (job.metadir / "job.script").write_text("echo $GREETING\n")  # the client's file
    job.cmd = ("bash", str(job.metadir / "job.script"))
    await xq.feed(job, envs={"GREETING": "hello"})
    empty = await sched.create_job(1, "")
    await xq.feed(empty)
    await xq.stop_feeding()
    assert job.stdout_file.read_text() == "pre\nhello\npost\n"
    assert (job.metadir / "job.script").exists()
    assert job.status is JobStatus.FINISHED and await job.get_rc() == 0
    assert empty.status is JobStatus.FINISHED and await empty.get_rc() == 0
    await job.set_status(JobStatus.FAILED)  # a client's verdict, e.g. no output
    assert job._status is JobStatus.FAILED
    assert job.status_file.read_text().strip() == str(int(JobStatus.FAILED))


async def test_feed_still_refuses_an_empty_command_it_is_given(tmp_path):
    xq = Xqute(workdir=tmp_path)
    with pytest.raises(xqute.ConfigError, match="empty"):
        await xq.feed([])
    await xq.run_until_complete()


async def test_a_v2_plugin_scheduler_runs_jobs_the_seed_way(tmp_path):
    import asyncio

    class Sched(V2Scheduler):
        name = "mine"

        async def submit_job(self, job):
            script = await self.wrapped_job_script(job)
            proc = await asyncio.create_subprocess_exec("bash", str(script))
            self._procs = {**getattr(self, "_procs", {}), job: proc}
            return proc.pid

        async def kill_job(self, job):
            self._procs[job].kill()

        async def job_is_running(self, job):
            return self._procs[job].returncode is None and not job.rc_file.exists()

    xq = Xqute(Sched, workdir=tmp_path, scheduler_opts={"poll_interval_s": 0.1})
    await xq.feed(["echo", "ok"])
    await xq.run_until_complete()
    assert xq.jobs[0].stdout_file.read_text() == "ok\n"
    assert isinstance(xq.jobs[0].metadir, SpecPath)


@pytest.mark.parametrize(
    ("kw", "mounts", "workdir", "mounted", "cwd"),
    [
        (  # nothing mounted: the workdir goes to <root>/<name>
            {"workdir": "/h/wd"},
            (("/h/wd", "/mnt/.x"),),
            "/h/wd",
            "/mnt/.x",
            None,
        ),
        (  # a relative workdir lives in mount_as_cwd's folder, already mounted
            {"workdir": ".x", "mount_as_cwd": "/h/cwd"},
            (("/h/cwd", "/mnt/.cwd"),),
            "/h/cwd/.x",
            "/mnt/.cwd/.x",
            "/mnt/.cwd",
        ),
        (  # ... an absolute one gets its own mount
            {"workdir": "/h/wd", "mount_as_cwd": "gs://bkt/cwd"},
            (("gs://bkt/cwd", "/mnt/.cwd"), ("/h/wd", "/mnt/.x")),
            "/h/wd",
            "/mnt/.x",
            "/mnt/.cwd",
        ),
        (  # cwd inside a mount: the relative workdir is under its host side
            {"workdir": ".x", "mounts": "gs://b/a:/mnt/s", "cwd": "/mnt/s/d"},
            (("gs://b/a", "/mnt/s"),),
            "gs://b/a/d/.x",
            "/mnt/s/d/.x",
            "/mnt/s/d",
        ),
        (  # the same mount twice is one; a nested, equivalent one is redundant
            {"workdir": "/h/wd", "mounts": ["/d:/m/d", "/d:/m/d", "/d/e:/m/d/e"]},
            (("/d", "/m/d"), ("/h/wd", "/mnt/.x")),
            "/h/wd",
            "/mnt/.x",
            None,
        ),
    ],
)
def test_mounts_follow_2x_rules(kw, mounts, workdir, mounted, cwd):
    from xqute.schedulers._mounts import plan_mounts

    kw = {**kw, "mounts": kw.get("mounts")}
    plan = plan_mounts(**kw, workdir_name=".x", root="/mnt")
    assert (plan.mounts, plan.workdir, plan.mounted_workdir, plan.cwd) == (
        mounts,
        workdir,
        mounted,
        cwd,
    )


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"mounts": "test"}, "mount 'test' is malformed"),
        ({"mounts": "REF=/data/ref"}, "named mounts"),
        ({"mounts": ["/a:/m", "/b:/m"]}, "'/m' has two hosts"),
        ({"mounts": "/a:/m", "cwd": "/elsewhere"}, "cwd '/elsewhere' is in no mount"),
        ({"mount_as_cwd": "/a", "cwd": "/m"}, "give one"),
    ],
)
def test_bad_mounts_are_clear(kw, message):
    from xqute.schedulers._mounts import plan_mounts

    with pytest.raises(xqute.ConfigError, match=message):
        plan_mounts(
            **{"mounts": None, **kw}, workdir=".x", workdir_name=".x", root="/m"
        )


async def test_the_2x_gbatch_surface_configures_and_refuses_to_run():
    from xqute.schedulers.gbatch_scheduler import GbatchScheduler

    with pytest.raises(ConfigTypeError, match="taskGroups 1"):
        GbatchScheduler(project="p", location="l", workdir="gs://bkt/w", taskGroups=1)
    sched = GbatchScheduler(
        project="p",
        location="l",
        workdir=".x",
        mount_as_cwd="gs://bkt/cwd",
        mount="gs://bkt/ref:/mnt/ref",
        image_uri="img",
        commands="-c",
    )
    await sched.post_init()
    spec = sched.config["taskGroups"][0]["taskSpec"]
    assert [v["mountPath"] for v in spec["volumes"]] == ["/mnt/disks/.cwd", "/mnt/ref"]
    assert spec["runnables"][0]["container"] == {"image_uri": "img", "commands": ["-c"]}
    assert (str(sched.workdir), sched.cwd) == ("gs://bkt/cwd/.x", "/mnt/disks/.cwd")
    with pytest.raises(xqute.ConfigError, match="not supported"):
        await sched.start()


def test_2x_ssh_servers_are_hosts():
    from xqute.schedulers.ssh_scheduler import servers_from_2x

    assert servers_from_2x(["h1", "h2"]) == {
        "h1": {"host": "h1"},
        "h2": {"host": "h2"},
    }
    assert servers_from_2x({"h1": {"port": 2222}}) == {
        "h1": {"host": "h1", "port": 2222}
    }


def test_2x_container_surface_refuses_apptainer_by_name():
    from xqute.schedulers.container_scheduler import ContainerScheduler

    with pytest.raises(xqute.ConfigError, match="apptainer"):
        ContainerScheduler(image="x.sif", bin="/usr/bin/apptainer")


async def test_jobs_made_but_not_fed_keep_their_files(tmp_path):
    """pipen makes every job with create_job and feeds only those not cached:
    the folders of the others are this run's, not an older run's."""
    for fed in ([0, 1], [1]):
        xq = Xqute(LocalScheduler, workdir=tmp_path)
        await xq.run_until_complete(keep_feeding=True)
        jobs = [await xq.scheduler.create_job(i, ["true"]) for i in (0, 1)]
        for job in jobs:
            if job.index in fed:
                await xq.feed(job)
        await xq.stop_feeding()
    assert (tmp_path / "0" / "job.rc").read_text().strip() == "0"
