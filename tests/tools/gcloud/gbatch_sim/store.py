"""On-disk job store: one directory per job, flock + atomic renames."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
import uuid

from .common import atomic_write_json, read_json, rfc3339, state_dir


# --------------------------------------------------------------------------- #
# Storage
# --------------------------------------------------------------------------- #
def jobs_root() -> str:
    return os.path.join(state_dir(), "jobs")


def job_dir(project: str, location: str, job_id: str) -> str:
    return os.path.join(jobs_root(), project, location, job_id)


def full_name(project: str, location: str, job_id: str) -> str:
    return f"projects/{project}/locations/{location}/jobs/{job_id}"


class JobGone(Exception):
    pass


@contextlib.contextmanager
def job_lock(jdir: str, uid: str | None = None):
    """Exclusive lock on one job; raises JobGone if it vanished meanwhile."""
    lock_path = os.path.join(jdir, "lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except FileNotFoundError:
        raise JobGone(jdir) from None
    with os.fdopen(fd, "r+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            try:
                # The dir may have been garbage-collected (and the name even
                # reused by a new job) while we waited for the lock.
                if os.stat(lock_path).st_ino != os.fstat(fh.fileno()).st_ino:
                    raise JobGone(jdir)
                job = read_json(os.path.join(jdir, "job.json"))
                sim = read_json(os.path.join(jdir, "sim.json"))
            except FileNotFoundError:
                raise JobGone(jdir) from None
            if uid is not None and job.get("uid") != uid:
                raise JobGone(jdir)
            box = {"job": job, "sim": sim, "dirty": False}
            yield box
            if box["dirty"]:
                box["job"]["updateTime"] = rfc3339()
                atomic_write_json(os.path.join(jdir, "sim.json"), box["sim"])
                atomic_write_json(os.path.join(jdir, "job.json"), box["job"])
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def remove_job_dir(jdir: str) -> None:
    trash = os.path.join(state_dir(), "trash")
    os.makedirs(trash, exist_ok=True)
    target = os.path.join(trash, f"{os.path.basename(jdir)}-{uuid.uuid4().hex[:12]}")
    try:
        os.rename(jdir, target)
    except FileNotFoundError:
        return
    shutil.rmtree(target, ignore_errors=True)


def deletion_expired(job: dict, sim: dict, now: float | None = None) -> bool:
    return (
        job.get("status", {}).get("state") == "DELETION_IN_PROGRESS"
        and sim.get("deleteAt") is not None
        and (time.time() if now is None else now) >= sim["deleteAt"]
    )


def gc_if_expired(jdir: str) -> bool:
    """Remove the job dir if its deletion delay passed. True if it is gone."""
    try:
        with job_lock(jdir) as box:
            if not deletion_expired(box["job"], box["sim"]):
                return False
            remove_job_dir(jdir)
            return True
    except JobGone:
        return True


def load_visible(jdir: str):
    """Return the job resource if it exists and is visible, else None."""
    try:
        job = read_json(os.path.join(jdir, "job.json"))
        sim = read_json(os.path.join(jdir, "sim.json"))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except json.JSONDecodeError:
        return None
    if deletion_expired(job, sim):
        gc_if_expired(jdir)
        return None
    return job


def iter_job_dirs(project: str, location: str | None):
    root = os.path.join(jobs_root(), project)
    locations = (
        [location]
        if location
        else sorted(os.listdir(root))
        if os.path.isdir(root)
        else []
    )
    for loc in locations:
        ldir = os.path.join(root, loc)
        try:
            names = sorted(os.listdir(ldir))
        except FileNotFoundError:
            continue
        for name in names:
            yield os.path.join(ldir, name)


def add_event(job: dict, description: str, **extra) -> None:
    event = {
        "type": "STATUS_CHANGED",
        "description": description,
        "eventTime": rfc3339(),
    }
    event.update(extra)
    job.setdefault("status", {}).setdefault("statusEvents", []).append(event)


def set_state(job: dict, new: str, suffix: str = "", **extra) -> None:
    old = job["status"]["state"]
    job["status"]["state"] = new
    add_event(
        job,
        f"Job state is set from {old} to {new} for job {job['name']}.{suffix}",
        **extra,
    )
