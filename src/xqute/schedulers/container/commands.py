"""The container engines' command lines and ``ps`` parsing, as pure functions.

Everything a user gives (image, paths, env values, extra args) ends up as
separate argv items, never in a shell string, and every flag takes its value in
``--flag=value`` form, so that a value starting with ``-`` cannot become a flag
of its own. Facts the code relies on (flag spellings, ``ps`` status texts, exit
codes) were checked against podman 4.3 and docker 20.10/28.2: see
docs/notes/ssh-containers.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ...outcome import PENDING, RUNNING, Observation, Seen
from ...resources import Resources
from ...status import JobOutcome
from .spec import ContainerSpec

__all__ = [
    "LABEL_JOB",
    "LABEL_RUN",
    "apptainer_exec_argv",
    "engine_run_argv",
    "parse_ps",
    "ps_argv",
    "rm_argv",
    "stop_argv",
]

_EXITED = re.compile(r"^Exited \((-?\d+)\)")
_RUNNING_PREFIXES = ("Up", "Restarting", "Paused", "Stopping", "Removing", "Removal")
_PENDING_PREFIXES = ("Created", "Configured", "Initialized")
LABEL_RUN = "xqute.run"
LABEL_JOB = "xqute.job"


def _resource_flags(resources: Resources) -> list[str]:
    flags = []
    if resources.cpus:
        flags.append(f"--cpus={resources.cpus}")
    if resources.mem_mb:
        flags.append(f"--memory={resources.mem_mb}m")
    return flags


def engine_run_argv(
    spec: ContainerSpec,
    *,
    name: str,
    run_id: str,
    index: int,
    workdir: str,
    mounted_workdir: str,
    cwd: str,
    script: str,
    resources: Resources | None = None,
) -> list[str]:
    """``docker|podman run --detach ...`` for one job.

    ``workdir`` is the host path mounted at ``mounted_workdir``; ``cwd`` and
    ``script`` are container paths. Labels carry the run and the job index, so a
    run's containers can be listed with one ``ps --filter label=...``.
    """
    argv = [
        spec.bin,
        "run",
        "--detach",
        f"--name={name}",
        f"--pull={spec.pull}",
        f"--label={LABEL_RUN}={run_id}",
        f"--label={LABEL_JOB}={index}",
        f"--volume={workdir}:{mounted_workdir}",
        *(f"--volume={v.spec()}" for v in spec.volumes),
        f"--workdir={cwd}",
        *(f"--env={k}={v}" for k, v in spec.envs.items()),
        *_resource_flags(resources or Resources()),
        *spec.bin_args,
        f"--entrypoint={spec.entrypoint}",
        spec.image,
        script,
    ]
    return argv


def _apptainer_env_ok(value: str) -> bool:
    """Whether ``--env K=V`` carries the value exactly: apptainer parses --env as
    a key=value map, which CSV-splits on ',' when '=' appears twice and trims
    surrounding double quotes."""
    if '"' in value:
        return False
    return not ("=" in value and "," in value)


def apptainer_exec_argv(
    spec: ContainerSpec,
    *,
    workdir: str,
    mounted_workdir: str,
    cwd: str,
    script: str,
) -> list[str]:
    """``apptainer exec --bind ... --env ... IMAGE ENTRYPOINT SCRIPT``.

    apptainer has no daemon and no container names: the process this starts is
    the job, tracked like a local one. An env value that ``--env`` cannot carry
    exactly goes through ``APPTAINERENV_NAME`` in the environment of apptainer,
    set with ``env`` (which takes any value).
    """
    plain = {k: v for k, v in spec.envs.items() if _apptainer_env_ok(v)}
    awkward = {k: v for k, v in spec.envs.items() if k not in plain}
    prefix = ["env", *(f"APPTAINERENV_{k}={v}" for k, v in awkward.items())]
    return [
        *(prefix if awkward else []),
        spec.bin,
        "exec",
        f"--bind={workdir}:{mounted_workdir}",
        *(f"--bind={v.spec()}" for v in spec.volumes),
        f"--pwd={cwd}",
        *(f"--env={k}={v}" for k, v in plain.items()),
        *spec.bin_args,
        spec.image,
        spec.entrypoint,
        script,
    ]


def ps_argv(spec: ContainerSpec, run_id: str) -> list[str]:
    """ONE command listing every container of the run (both engines)."""
    return [
        spec.bin,
        "ps",
        "--all",
        f"--filter=label={LABEL_RUN}={run_id}",
        "--format={{.Names}}\t{{.Status}}",
    ]


def stop_argv(spec: ContainerSpec, names: Sequence[str], grace_s: float) -> list[str]:
    """TERM, then KILL after ``grace_s``, for many containers in one command.

    ``stop`` rather than ``kill``: podman's ``kill`` gives up on all names when one
    has already exited; ``stop --ignore`` (podman) skips missing ones, docker goes
    on past them (rc 1, "No such container").
    """
    argv = [spec.bin, "stop", f"--time={max(1, round(grace_s))}"]
    if spec.engine == "podman":
        argv.append("--ignore")
    return [*argv, *names]


def rm_argv(spec: ContainerSpec, names: Sequence[str]) -> list[str]:
    """Remove containers (also running ones, at once; missing ones: rc 0)."""
    argv = [spec.bin, "rm", "--force"]
    if spec.engine == "podman":
        argv.append("--time=0")  # else a running one gets TERM and 10 s
    return [*argv, *names]


def parse_ps(text: str) -> dict[str, Observation]:
    """``NAME<TAB>STATUS`` lines (``ps --format``) -> observations by name.

    ``Exited (N)`` is done with rc N: the wrapper exits with the rc it recorded,
    so 0 is a success; a non-zero exit is a failure whose details the job's files
    give when the wrapper wrote them (``job_result`` prefers them).
    """
    out: dict[str, Observation] = {}
    for line in text.splitlines():
        name, sep, status = line.partition("\t")
        name, status = name.strip(), status.strip()
        if not sep or not name:
            continue
        exited = _EXITED.match(status)
        if exited:
            rc = int(exited.group(1))
            if rc == 0:
                out[name] = Observation(Seen.DONE, JobOutcome.SUCCEEDED, None, 0)
            else:
                why = f"the container exited with {rc}"
                if rc == 137:
                    why += " (SIGKILL: out of memory, or killed from outside)"
                out[name] = Observation(Seen.DONE, JobOutcome.FAILED, why, rc)
        elif status.startswith(_RUNNING_PREFIXES):
            out[name] = RUNNING
        elif status.startswith(_PENDING_PREFIXES):
            out[name] = PENDING
        elif status.startswith("Dead"):
            out[name] = Observation(
                Seen.DONE, JobOutcome.LOST, f"the container is dead ({status})"
            )
        else:  # a state this code does not know: keep following it
            out[name] = RUNNING
    return out
