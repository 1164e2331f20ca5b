"""``SqliteJobScheduler.submit_job``: a folder or name no job can have is
refused by name (a NUL was stored, and failed the job at spawn; an int folder
was a TypeError from os.fspath)."""

import pytest

from xqute.errors import ConfigError
from xqute.queue import SqliteJobScheduler


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"working_dir": "a\x00"}, r"working_dir '.*a\\x00' must be text without NUL"),
        ({"working_dir": 5}, "working_dir 5 must be a folder's path"),
        ({"job_name": "a\x00b"}, r"job_name 'a\\x00b' must be text without NUL"),
    ],
)
def test_bad_text_is_refused_by_name(tmp_path, kwargs, message):
    store = SqliteJobScheduler(tmp_path / "q.db")
    try:
        with pytest.raises(ConfigError, match=message):
            store.submit_job(["echo"], **kwargs)
        assert sum(store.count_jobs().values()) == 0
    finally:
        store.close()
