"""Wake-up pipes: a notify wakes every listener of a db, counts them, and
forgets the pipes of listeners that died."""

import os
import select
import stat

from xqute.queue import SqliteJobScheduler
from xqute.queue.wake import WakePipe, notify, wake_dir


def readable(pipe: WakePipe) -> bool:
    return bool(select.select([pipe.fileno()], [], [], 0)[0])


def test_notify_wakes_every_listener_once_and_counts_them(tmp_path):
    db = tmp_path / "q.db"
    assert notify(db) == 0  # no folder yet: nobody listens
    pipes = [WakePipe(db), WakePipe(db)]
    for pipe in pipes:
        pipe.open()
    try:
        assert stat.S_IMODE(os.stat(wake_dir(db)).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(pipes[0].path).st_mode) == 0o600
        assert not any(readable(p) for p in pipes)
        assert notify(db) == 2 and notify(db) == 2
        assert all(readable(p) for p in pipes)
        for pipe in pipes:
            pipe.drain()  # two notifies, one wake-up
        assert not any(readable(p) for p in pipes)
        assert notify(db, exclude=str(pipes[0].path)) == 1
        assert readable(pipes[1]) and not readable(pipes[0])
    finally:
        for pipe in pipes:
            pipe.close()
    assert notify(db) == 0 and os.listdir(wake_dir(db)) == []


def test_a_dead_listeners_pipe_is_removed(tmp_path):
    db = tmp_path / "q.db"
    wake_dir(db).mkdir()
    os.mkfifo(wake_dir(db) / "gone")  # nobody holds it open: its pool died
    assert notify(db) == 0
    assert os.listdir(wake_dir(db)) == []


def test_submit_and_cancel_notify(tmp_path):
    store = SqliteJobScheduler(tmp_path / "q.db")
    job_id = store.submit_job(["true"])
    assert store.pools_woken == 0
    pipe = WakePipe(store.db_path)
    pipe.open()
    try:
        store.submit_jobs([{"command": "true"}])
        assert store.pools_woken == 1 and readable(pipe)
        pipe.drain()
        store.cancel_job(job_id)
        assert readable(pipe)
    finally:
        pipe.close()
        store.close()
