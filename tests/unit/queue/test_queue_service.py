"""The daemon's lock and option checks, without starting a daemon."""

import fcntl
import json
import os
import threading
import time

import psutil
import pytest

from xqute import ConfigError
from xqute.queue import AlreadyRunningError, SchedulerService
from xqute.queue import lockfile as service_mod


@pytest.fixture
def service(tmp_path):
    return SchedulerService(tmp_path / "q.db")


def hold_lock(service, how=fcntl.LOCK_SH, for_s=None):
    fd = os.open(service.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, how)
    if for_s is not None:
        threading.Timer(for_s, os.close, (fd,)).start()
    return fd


def test_a_stale_pid_file_and_a_status_call_do_not_stop_a_start(service):
    # the pid file of a SIGKILLed daemon, whose pid was reused since
    service.pid_path.write_text(json.dumps({"pid": os.getpid(), "create_time": 1.0}))
    assert service.status()["running"] is False
    hold_lock(service, for_s=0.1)  # what status() holds for microseconds
    began = time.monotonic()
    fd = service.acquire_lock()
    try:
        assert 0.05 < time.monotonic() - began < service_mod.LOCK_WAIT_S
        info = json.loads(service.pid_path.read_text())
        assert info["create_time"] == psutil.Process().create_time()
    finally:
        service.release_lock(fd)
    assert not service.pid_path.exists()


def test_a_live_daemon_is_named_at_once(service, monkeypatch):
    me = psutil.Process()
    service.pid_path.write_text(
        json.dumps({"pid": me.pid, "create_time": me.create_time()})
    )
    fd = hold_lock(service, fcntl.LOCK_EX)
    try:
        with pytest.raises(AlreadyRunningError, match=f"pid {me.pid}"):
            service.acquire_lock()
        assert service.status()["pid"] == me.pid
        # locked and no (live) pid file: a daemon starting; given up after a while
        service.pid_path.unlink()
        monkeypatch.setattr(service_mod, "LOCK_WAIT_S", 0.05)
        with pytest.raises(AlreadyRunningError, match="pid unknown"):
            service.acquire_lock()
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("opts", "match"),
    [
        ({"backend": "nope"}, "nope"),
        ({"backend": "xqute.queue.pool:Nope"}, "cannot import"),
        ({"recovery_policy": "maybe"}, "maybe"),
        ({"memory": "4X"}, "4X"),
        ({"backend_opts": {"bogus": 1}}, "bogus"),
    ],
)
def test_bad_pool_options_fail_before_anything_starts(tmp_path, opts, match):
    service = SchedulerService(tmp_path / "q.db", 2, **opts)
    with pytest.raises(ConfigError, match=match):
        service.start()
    with pytest.raises(ConfigError, match=match):
        service.start(foreground=True)
    assert not service.log_path.exists() and not service.lock_path.exists()
    with pytest.raises(ConfigError, match="max_workers 0"):
        SchedulerService(tmp_path / "q.db", 0).start()
