"""Apptainer (Singularity) jobs: ``apptainer exec`` run as local processes.

apptainer has no daemon and no container names: ``apptainer exec IMAGE CMD`` is
an ordinary process whose exit status is the command's. So this backend is the
local one with a different launch command: the job's end is learned from the
process (pidfd, no polling), a kill is SIGTERM to its process group (apptainer
forwards it to the contained process), and the orphan guard kills the jobs if
the driver dies. The options are those of the container backend; it is chosen by
``Xqute(scheduler="container", scheduler_opts={"bin": "apptainer", ...})``.

apptainer could not be installed where xqute is developed (no Debian package):
the command line is covered by unit tests, and the process handling by a fake
``apptainer`` executable in the integration tests.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from ...errors import ConfigError
from ...job import Job
from ...processes import runs_script
from ..local import LocalScheduler
from .commands import apptainer_exec_argv
from .spec import (
    _IMAGE_URI,
    CONTAINER_OPTIONS,
    ContainerSpec,
    check_engine_and_volumes,
    check_host_workdir,
)
from .spec import parse_container_options as _parse

__all__ = ["ApptainerScheduler"]


class ApptainerScheduler(LocalScheduler):
    """Run each job with ``apptainer exec`` as a local process."""

    name: ClassVar[str] = "container"
    backend_options: ClassVar[dict[str, str]] = CONTAINER_OPTIONS
    # the wrapper is not the leader of the process group apptainer runs in
    own_process_group: ClassVar[bool] = False
    # the native id is apptainer's pid (written by the driver), not the wrapper's
    jid_is_wrapper_pid: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec: ContainerSpec = _parse(self.config)
        if self.spec.engine != "apptainer":  # constructed directly with docker
            raise ConfigError(
                f"ApptainerScheduler needs bin='apptainer', not {self.spec.bin!r}"
            )
        self.mounted_workdir = self.spec.mounted_workdir  # None: at its own path

    async def start(self) -> None:
        check_host_workdir(str(self.workdir), self.spec.engine)
        await super().start()
        spec = self.spec
        check_engine_and_volumes(spec)
        if not _IMAGE_URI.match(spec.image) and not os.path.exists(spec.image):
            raise ConfigError(
                f"image {spec.image!r} does not exist (apptainer needs a local .sif"
                " file or sandbox directory; nothing is pulled)"
            )

    def launch_argv(self, job: Job, script: Path) -> list[str]:
        """``apptainer exec ...``, with apptainer's own errors (a bad image, a
        failed bind) appended to job.stderr: the wrapper has not started then."""
        mounted_workdir, metadir = self.script_paths(job)
        argv = apptainer_exec_argv(
            self.spec,
            workdir=str(self.workdir),
            mounted_workdir=mounted_workdir,
            cwd=metadir,
            script=self.job_script_path(job),
        )
        return [self._bash, "-c", 'exec "$@" 2>>"$0"', str(job.stderr_file), *argv]

    def _adopted_pid(self, job: Job, jid: str | None) -> int | None:
        """The pid of a job an earlier driver started, if it still runs there.

        The local check (the host path of the script in the pid's command line)
        does not fit apptainer: it is given the script's path as the container
        sees it (``mounted_workdir``), and it re-executes itself as "Apptainer
        runtime parent" (a command line without the script) and runs the
        entrypoint as its child. So the pid, or one of its descendants, must have
        the path apptainer was given in its command line (pids are reused).
        """
        if not jid or not jid.isdigit():
            return None
        script = self.job_script_path(job)
        return int(jid) if runs_script(int(jid), script, in_tree=True) else None
