"""Plugins (simplug hooks) and custom schedulers, through the public API."""

import asyncio
import sys
import textwrap

import pytest

from xqute import JobOutcome, JobStatus, PluginError, Scheduler, Xqute
from xqute import simplug as pm


def make_recorder(name="recorder"):
    events = []

    class Recorder:
        @pm.impl
        def on_init(xqute):
            events.append(("init", None))

        @pm.impl
        def on_shutdown(xqute, sig):
            events.append(("shutdown", sig))

        @pm.impl
        async def on_job_init(scheduler, job):
            events.append(("init", job.index))

        @pm.impl
        async def on_job_queued(scheduler, job):
            events.append(("queued", job.index))

        @pm.impl
        async def on_job_submitting(scheduler, job):
            events.append(("submitting", job.index))

        @pm.impl
        async def on_job_submitted(scheduler, job):
            events.append(("submitted", job.index))

        @pm.impl
        async def on_job_started(scheduler, job):
            events.append(("started", job.index))

        @pm.impl
        async def on_job_succeeded(scheduler, job):
            events.append(("succeeded", job.index))

        @pm.impl
        async def on_job_failed(scheduler, job):
            events.append(("failed", job.index))

    Recorder.name = name
    return Recorder, events


async def test_hooks_fire_in_lifecycle_order(workdir):
    plugin, events = make_recorder("order")
    xqute = Xqute(workdir=workdir, plugins=[plugin])
    await xqute.feed(["true"])
    await xqute.feed("exit 1")
    await xqute.run_until_complete()
    per_job = {i: [e for e, j in events if j == i] for i in (0, 1)}
    assert per_job[0] == [
        "init",
        "queued",
        "submitting",
        "submitted",
        "started",
        "succeeded",
    ]
    assert per_job[1] == [
        "init",
        "queued",
        "submitting",
        "submitted",
        "started",
        "failed",
    ]
    assert events[0] == ("init", None) and events[-1] == ("shutdown", None)


async def test_plugins_are_per_engine(workdir):
    plugin, events = make_recorder("per-engine")
    await _run(Xqute(workdir=workdir / "a", plugins=[plugin]))
    seen = len(events)
    await _run(Xqute(workdir=workdir / "b"))  # not named: not enabled
    await _run(Xqute(workdir=workdir / "c", plugins=["-per-engine"]))
    assert len(events) == seen


async def _run(xqute, cmd=("true",)):
    await xqute.feed(list(cmd))
    await xqute.run_until_complete()
    return xqute


async def test_submitting_false_skips_the_job(workdir):
    class Skipper:
        name = "skipper"

        @pm.impl
        async def on_job_submitting(scheduler, job):
            return False if job.index == 1 else None

    xqute = Xqute(workdir=workdir, plugins=[Skipper])
    for _ in range(3):
        await xqute.feed(["true"])
    await xqute.run_until_complete()
    assert [j.outcome for j in xqute.jobs] == [
        JobOutcome.SUCCEEDED,
        JobOutcome.SKIPPED,
        JobOutcome.SUCCEEDED,
    ]
    assert not (workdir / "1" / "job.wrapped.local").exists()
    assert xqute.counts()["skipped"] == 1


async def test_killing_false_prevents_the_kill(workdir):
    class Keeper:
        name = "keeper"
        killed = []

        @pm.impl
        async def on_job_killing(scheduler, job):
            return False if job.index == 1 else None

        @pm.impl
        async def on_job_killed(scheduler, job):
            Keeper.killed.append(job.index)

    xqute = Xqute(workdir=workdir, forks=3, error_strategy="halt", plugins=[Keeper])
    await xqute.feed("sleep 0.1; exit 1")
    await xqute.feed("sleep 0.5; echo survived")
    await xqute.feed("sleep 30")
    await xqute.run_until_complete()
    assert Keeper.killed == [2]
    assert xqute.jobs[1].outcome is JobOutcome.SUCCEEDED
    assert xqute.jobs[1].stdout_file.read_text() == "survived\n"
    assert xqute.jobs[2].outcome is JobOutcome.KILLED


async def test_jobcmd_snippets(workdir):
    class Snippets:
        name = "snippets"

        @pm.impl
        def on_jobcmd_init(scheduler, job):
            return "echo init-$XQUTE_JOB_INDEX"

        @pm.impl
        def on_jobcmd_prep(scheduler, job):
            return "echo prep"

        @pm.impl
        def on_jobcmd_end(scheduler, job):
            return 'echo "end rc=$XQUTE_JOB_RC"'

    xqute = await _run(Xqute(workdir=workdir, plugins=[Snippets]), ["echo", "cmd"])
    assert xqute.jobs[0].stdout_file.read_text() == "init-0\nprep\ncmd\nend rc=0\n"


async def test_plugin_instance_with_self(workdir):
    class Counter:
        name = "counter"

        def __init__(self):
            self.n = 0

        @pm.impl
        async def on_job_succeeded(self, scheduler, job):
            self.n += 1
            Counter.last = self.n

    counter = Counter()
    await _run(Xqute(workdir=workdir, plugins=[counter]))
    assert counter.n == 1 and Counter.last == 1


async def test_a_failing_hook_names_plugin_and_hook(workdir):
    class Broken:
        name = "broken"

        @pm.impl
        async def on_job_submitted(scheduler, job):
            raise RuntimeError("boom")

    xqute = Xqute(workdir=workdir, plugins=[Broken])
    await xqute.feed(["sleep", "30.21"])
    with pytest.raises(PluginError, match="'broken' failed in on_job_submitted"):
        await xqute.run_until_complete()
    assert xqute.jobs[0].outcome is JobOutcome.KILLED


async def test_on_job_polling_fires_on_local_too(workdir):
    class LocalPoll:
        name = "localpoll"
        seen = []

        @pm.impl
        async def on_job_polling(scheduler, job, counter):
            LocalPoll.seen.append((job.index, counter))

    xqute = Xqute(
        workdir=workdir, plugins=[LocalPoll], scheduler_opts={"poll_interval_s": 0.05}
    )
    await xqute.feed(["sleep", "0.25"])
    await xqute.run_until_complete()
    assert len(LocalPoll.seen) >= 3 and {i for i, _ in LocalPoll.seen} == {0}


async def test_on_job_polling_fires_for_polled_backends(workdir):
    class Poll:
        name = "poll"
        counters = []

        @pm.impl
        async def on_job_polling(scheduler, job, counter):
            Poll.counters.append(counter)

    xqute = Xqute(
        workdir=workdir,
        scheduler=SeedScheduler,
        plugins=[Poll],
        scheduler_opts={"poll_interval_s": 0.05, "poll_interval_max_s": 0.05},
    )
    await xqute.feed(["sleep", "0.25"])
    await xqute.run_until_complete()
    assert len(Poll.counters) >= 3 and Poll.counters == sorted(Poll.counters)


class SeedScheduler(Scheduler):
    """A custom backend written the documented seed way."""

    name = "seed"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.procs = {}

    async def submit_job(self, job):
        script = await self.wrapped_job_script(job)
        proc = await asyncio.create_subprocess_exec("bash", str(script))
        self.procs[job.index] = proc
        return f"seed-{proc.pid}"

    async def kill_job(self, job):
        self.procs[job.index].terminate()

    async def job_is_running(self, job):
        return self.procs[job.index].returncode is None


async def test_custom_scheduler_the_seed_way(workdir):
    xqute = Xqute(
        scheduler=SeedScheduler,
        workdir=workdir,
        forks=3,
        scheduler_opts={"poll_interval_s": 0.05, "poll_interval_max_s": 0.05},
    )
    await xqute.feed(["echo", "custom"])
    await xqute.feed("exit 5")
    await xqute.feed(["sleep", "0.2"])
    await xqute.run_until_complete()
    ok, bad, slow = xqute.jobs
    assert ok.stdout_file.read_text() == "custom\n" and await ok.get_rc() == 0
    assert (await ok.get_jid()).startswith("seed-")
    assert (workdir / "0" / "job.wrapped.seed").exists()
    assert bad.status == JobStatus.FAILED and bad.rc == 5
    assert slow.outcome is JobOutcome.SUCCEEDED


async def test_custom_scheduler_kill_on_halt(workdir):
    xqute = Xqute(
        scheduler=SeedScheduler,
        workdir=workdir,
        forks=2,
        error_strategy="halt",
        scheduler_opts={
            "poll_interval_s": 0.05,
            "poll_interval_max_s": 0.05,
            "kill_grace_s": 1,
        },
    )
    await xqute.feed("sleep 0.2; exit 1")
    await xqute.feed(["sleep", "30.22"])
    await asyncio.wait_for(xqute.run_until_complete(), 15)
    assert xqute.jobs[1].outcome is JobOutcome.KILLED and xqute.jobs[1].rc == 143


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """A real installed-looking distribution on sys.path with entry points."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "xq_fake_sched.py").write_text(
        textwrap.dedent("""
        from xqute.schedulers.local import LocalScheduler
        class FakeEpScheduler(LocalScheduler):
            name = "fakeep"
    """)
    )
    (site / "xq_fake_plugin.py").write_text(
        textwrap.dedent("""
        from xqute import simplug as pm
        CALLS = []
        @pm.impl
        async def on_job_succeeded(scheduler, job):
            CALLS.append(job.index)
    """)
    )
    dist = site / "xq_fake-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: xq-fake\nVersion: 0.1\n"
    )
    (dist / "entry_points.txt").write_text(
        "[xqute.schedulers]\nfakeep = xq_fake_sched:FakeEpScheduler\n\n"
        "[xqute]\nxq_fake_plugin = xq_fake_plugin\n"
    )
    monkeypatch.syspath_prepend(str(site))
    # (xqute.plugin, the attribute, is the plugin manager; the module is xqute.hooks)
    monkeypatch.setattr(sys.modules["xqute.hooks"], "_entrypoints_loaded", False)
    yield site
    if "xq_fake_plugin" in pm.get_all_plugin_names():
        pm.disable("xq_fake_plugin")
    sys.modules.pop("xq_fake_plugin", None)


async def test_entry_points_add_schedulers_and_plugins(workdir, fake_distribution):
    from xqute.schedulers import available_schedulers

    assert "fakeep" in available_schedulers()
    xqute = Xqute(scheduler="fakeep", workdir=workdir)
    assert type(xqute.scheduler).__name__ == "FakeEpScheduler"
    await xqute.feed(["true"])
    await xqute.run_until_complete()
    import xq_fake_plugin

    assert xq_fake_plugin.CALLS == [0]
    assert (workdir / "0" / "job.wrapped.fakeep").exists()


def test_a_seed_style_on_init_gets_the_scheduler_with_a_warning(workdir):
    seen = []

    class Seed:
        name = "seed-on-init"

        @pm.impl
        def on_init(scheduler):
            seen.append(scheduler)

    class SeedMethod:
        name = "seed-on-init-method"

        @pm.impl
        def on_init(self, scheduler):
            seen.append((self, scheduler))

    with pytest.warns(DeprecationWarning, match=r"on_init\(scheduler\) is deprecat"):
        xqute = Xqute(workdir=workdir, plugins=[Seed])
    assert seen == [xqute.scheduler]
    with pytest.warns(DeprecationWarning, match="seed-on-init-method"):
        xqute = Xqute(workdir=workdir, plugins=[SeedMethod()])
    assert isinstance(seen[1][0], SeedMethod) and seen[1][1] is xqute.scheduler
