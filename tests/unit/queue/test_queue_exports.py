"""The queue's public names: what users' code imports from xqute.queue."""

import xqute.queue


def test_contract_names():
    from xqute.queue import SchedulerService, SqliteJobScheduler, WorkerPoolManager

    assert SqliteJobScheduler.__module__ == "xqute.queue.store"
    assert WorkerPoolManager.__module__ == "xqute.queue.pool"
    assert SchedulerService.__module__ == "xqute.queue.service"
    for method in ("submit_job", "submit_jobs", "get_job_status", "cancel_job",
                   "list_jobs"):  # fmt: skip
        assert callable(getattr(SqliteJobScheduler, method))
    for method in ("start_workers", "stop_workers", "get_worker_status"):
        assert callable(getattr(WorkerPoolManager, method))
    for method in ("start", "status", "stop"):
        assert callable(getattr(SchedulerService, method))


def test_all_names_are_importable():
    for name in xqute.queue.__all__:
        assert getattr(xqute.queue, name) is not None, name


def test_errors_join_the_tree():
    from xqute import StoreError, XquteError
    from xqute.queue import AlreadyRunningError, JobNotFoundError, ServiceError

    assert issubclass(JobNotFoundError, StoreError)
    assert issubclass(JobNotFoundError, LookupError)
    assert issubclass(AlreadyRunningError, ServiceError)
    assert issubclass(ServiceError, XquteError)


def test_the_queue_backend_is_registered():
    from xqute.queue import QueueScheduler
    from xqute.schedulers import available_schedulers, get_scheduler

    assert "queue" in available_schedulers()
    assert get_scheduler("queue") is QueueScheduler
