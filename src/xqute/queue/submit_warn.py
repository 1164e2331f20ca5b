"""What ``xqute submit`` warns about: a job that will not start soon.

Shared by the command's two ways to queue (straight into the db, or through the
daemon's socket, where the daemon asks): no pool serves the db, or no running
pool is big enough for the job. A warning, not a refusal: a bigger pool may
start later, and the job waits for it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (xqute submit)
if TYPE_CHECKING:
    from .store import JobStore

__all__ = ["unfit", "waits_warning"]


def waits_warning(
    store: JobStore,
    cpus: int | None,
    mem: str | None,
    gpus: int | None,
    count: int,
    pools: int | None = None,
) -> str | None:
    """The warning for ``count`` jobs just queued through ``store``, or None.
    ``pools``: how many pools listen (default: the ``pools_woken`` the submit
    set)."""
    what = "the job waits" if count == 1 else "the jobs wait"
    if not (store.pools_woken if pools is None else pools):
        return (
            f"no worker pool serves {store.db.path} now: {what} until one"
            " starts (xqute service start)"
        )
    reason = unfit(store, cpus or 1, mem, gpus or 0)
    if reason:
        return f"no running pool can ever run it ({reason}); {what} for a bigger one"
    return None


def unfit(store: JobStore, cpus: int, mem: str | None, gpus: int) -> str | None:
    """Why no running pool of ``store`` can ever run such a job, or None."""
    pools = store.list_workers(include_stopped=False)
    if not pools:
        return None
    most_cpus = max(p["cpus"] or 0 for p in pools)
    most_gpus = max(len((p["gpu_ids"] or "").split(",")) if p["gpu_ids"] else 0
                    for p in pools)  # fmt: skip
    if cpus > most_cpus:
        return f"it asks for {cpus} cpus, the largest pool has {most_cpus}"
    if gpus > most_gpus and all(p["backend"] == "local" for p in pools):
        return f"it asks for {gpus} GPUs, the largest pool has {most_gpus}"
    if mem:
        from ..units import parse_mem_mb

        most_mem = max(p["mem_mb"] or 0 for p in pools)
        if parse_mem_mb(mem, "--mem") > most_mem:
            return f"it asks for {mem} of memory, the largest pool has {most_mem} MB"
    return None
