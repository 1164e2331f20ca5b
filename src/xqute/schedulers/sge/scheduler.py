"""The Grid Engine (SGE) backend: qsub, one qstat per poll cycle, qacct, qdel.

Options are qsub flags written as ``#$`` directives (``q``, ``l`` (a list gives
one ``-l`` each), ``pe``, ``notify`` ...; any flag passes through; values must be
plain words, see ``directives``). By default jobs run with ``-S /bin/bash`` (a
cluster in ``posix_compliant`` mode ignores the ``#!`` line) and ``-cwd`` (else
SGE starts them in ``$HOME``, unlike Slurm and local jobs); ``cwd: False`` and
``S`` override that. Generic resources map to ``-pe <cpus_pe> N``, ``-l
h_vmem=NM``, ``-l gpu=N`` and ``-l h_rt=<seconds>``; an explicit option wins.

Facts this relies on (docs/notes/clusters.md): finished jobs vanish from qstat
at once (the rc file, else ``qacct -j``, which takes ONE job per call and may lag
behind); qstat has no filter by id, so one ``qstat -xml`` is parsed and filtered;
``qdel`` (and ``h_rt``) is an immediate SIGKILL: no trap runs. So a job xqute
deleted ends, once gone from qstat, with the batch base's ``killed_rc`` 137 (the
driver writes it into the job's folder, never over an rc the wrapper wrote); a
job SIGKILLed without an rc that xqute did not delete is reported as cancelled
outside xqute (SGE cannot tell qdel from another SIGKILL), and one that left the
queue without ever starting or an accounting record within ``lost_grace_s`` as
deleted while queued.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ...errors import BackendError, CommandFailed, ConfigError
from ...job import Job
from ...outcome import Observation, Seen
from ...status import JobOutcome, JobStatus
from ..batch import BatchScheduler
from ..directives import RenderedDirectives, as_list
from ..helpers.command import CommandResult
from .directives import render_sge, sge_path
from .parse import (
    EQW,
    ERROR_STATE,
    parse_error_reasons,
    parse_qacct,
    parse_qdel,
    parse_qstat_xml,
)

__all__ = ["SgeScheduler"]

_TOOLS = {"qsub": "qsub", "qstat": "qstat", "qdel": "qdel", "qacct": "qacct"}


class SgeScheduler(BatchScheduler):
    """Run jobs through Grid Engine (qsub/qstat/qacct/qdel)."""

    name: ClassVar[str] = "sge"
    opt_prefixes: ClassVar[tuple[str, ...]] = ("qsub_", "sge_")
    backend_options: ClassVar[None] = None  # every qsub flag passes through
    own_process_group: ClassVar[bool] = True  # SGE starts it in its own session
    tools: ClassVar[dict[str, str]] = _TOOLS
    status_takes_ids: ClassVar[bool] = False  # qstat lists every job
    transient_errors: ClassVar[tuple[str, ...]] = (
        r"unable to send message to qmaster",
        r"unable to contact qmaster",
        r"commlib error",
        r"failed receiving gdi request",
        r"got send error",
    )
    default_submit_concurrency: ClassVar[int | None] = 8
    supports_arrays: ClassVar[bool] = True
    array_task_env: ClassVar[str] = "SGE_TASK_ID"
    killed_rc: ClassVar[int | None] = 137  # qdel is a SIGKILL
    accounting_ids_per_command: ClassVar[int | None] = 1  # qacct -j takes one
    accounting_concurrency: ClassVar[int] = 4

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # xqute's own option (not a qsub flag)
        self.cpus_pe = str(self.config.pop("cpus_pe", "smp"))
        render_sge({"pe": f"{self.cpus_pe} 2"})  # a plain word
        self.directives = self.backend_config()
        if "t" in self.directives or "tc" in self.directives:
            raise ConfigError(
                "SGE option 't'/'tc' (array jobs) is set by xqute: use array=True"
            )
        render_sge(self.directives)  # reject unsafe values now, not per job
        sge_path("workdir", str(self.workdir))
        self.rendered_directives = RenderedDirectives(self.job_directives, render_sge)

    # ------------------------------------------------------------------ script
    def job_directives(self, job: Job) -> dict[str, Any]:
        """Options, defaults and resources of a job (no name, no output files)."""
        opts = dict(self.directives)
        opts.setdefault("S", "/bin/bash")
        if "cwd" not in opts and "wd" not in opts:
            opts["cwd"] = True
        res = job.resources
        given = _resource_names(opts.get("l"))
        extra = []
        if res.cpus and res.cpus > 1 and "pe" not in opts:
            opts["pe"] = f"{self.cpus_pe} {res.cpus}"
        if res.mem_mb is not None and "h_vmem" not in given:
            # h_vmem is per slot; the generic mem is per job (as on Slurm)
            per_slot = math.ceil(res.mem_mb / _slots(opts.get("pe")))
            extra.append(f"h_vmem={per_slot}M")
        if res.gpus and "gpu" not in given:
            extra.append(f"gpu={res.gpus}")
        if res.time_limit_s is not None and "h_rt" not in given:
            extra.append(f"h_rt={max(1, round(res.time_limit_s))}")
        if extra:
            opts["l"] = [*as_list(opts.get("l")), *extra]
        return opts

    def script_header(self, job: Job) -> list[str]:
        own = {"N": self.job_name(job), "o": job.stdout_file, "e": job.stderr_file}
        own = {k: str(v) for k, v in own.items() if k not in self.directives}
        return [*self.rendered_directives(job), *render_sge(own)]

    # ------------------------------------------------------------------ builders
    def submit_argv(self, job: Job, script: Path) -> list[str]:
        return [self.tool("qsub"), "-terse", str(script)]

    def parse_submit(self, result: CommandResult) -> str:
        match = re.match(r"\s*(?:Your job(?:-array)? )?(\d+)", result.stdout)
        if not match:
            raise BackendError(f"qsub printed no job id: {result.stdout!r}")
        return match[1]

    def status_argv(self, native_ids: Sequence[str]) -> list[str]:
        return [self.tool("qstat"), "-xml"]

    def parse_status(
        self, result: CommandResult, native_ids: Sequence[str]
    ) -> dict[str, Observation]:
        return parse_qstat_xml(result.stdout, native_ids)

    def kill_argv(self, native_ids: Sequence[str]) -> list[str]:
        return [self.tool("qdel"), *native_ids]

    def check_kill(self, result: CommandResult, native_ids: Sequence[str]) -> None:
        """qdel exits 1 when one id is finished (or unknown): no failure when it
        deleted or did not find each id."""
        deleted, gone = parse_qdel(result.stdout)
        if result.rc != 0 and not (deleted | gone) >= set(native_ids):
            raise CommandFailed(result.argv, result.rc, result.stdout, result.stderr)

    def accounting_argv(self, native_ids: Sequence[str]) -> list[str] | None:
        (jid,) = native_ids  # accounting_ids_per_command
        number, _, task = jid.partition(".")
        return [self.tool("qacct"), "-j", number, *(["-t", task] if task else [])]

    def parse_accounting(
        self, result: CommandResult, native_ids: Sequence[str]
    ) -> dict[str, Observation]:
        (jid,) = native_ids
        obs = parse_qacct(result.stdout, jid) if result.rc == 0 else None
        return {} if obs is None else {jid: obs}

    # ------------------------------------------------------------------ arrays
    def array_key(self, job: Job) -> Hashable:
        return self.rendered_directives(job)

    def array_task_ids(self, count: int) -> list[int]:
        return list(range(1, count + 1))

    def array_header(self, jobs: Sequence[Job], array_dir: Path) -> list[str]:
        opts = self.job_directives(jobs[0])
        opts.setdefault("N", f"{self.jobname_prefix}-array-{jobs[0].index}")
        opts["t"] = f"1-{len(jobs)}"
        opts["tc"] = min(self.forks, len(jobs))
        lines = render_sge(opts)
        # SGE expands $TASK_ID in -o/-e: each task writes through its symlink
        folder = sge_path("workdir", f"{array_dir}/")[:-1]
        if "o" not in opts:
            lines.append(f'#$ -o {folder}$TASK_ID.stdout"')
        if "e" not in opts:
            lines.append(f'#$ -e {folder}$TASK_ID.stderr"')
        return lines

    def array_submit_argv(self, jobs: Sequence[Job], script: Path) -> list[str]:
        return [self.tool("qsub"), "-terse", str(script)]

    def parse_array_submit(
        self, result: CommandResult, task_ids: list[int]
    ) -> list[str]:
        base = self.parse_submit(result)
        return [f"{base}.{task}" for task in task_ids]

    # ------------------------------------------------------------------ running
    async def poll_jobs(self, jobs: Sequence[Job]) -> dict[Job, Observation]:
        """One qstat; jobs in the error state (Eqw) would wait there forever:
        they are deleted and failed with SGE's error reason."""
        observations = await super().poll_jobs(jobs)
        errored = [j for j, o in observations.items() if o is EQW]
        if errored:
            ids = [str(j.jid) for j in errored]
            numbers = sorted({i.split(".")[0] for i in ids})
            result = await self.run(
                [self.tool("qstat"), "-j", ",".join(numbers)], check=False
            )
            reasons = parse_error_reasons(result.stdout)
            await self._kill_ids(ids)
            for job in errored:
                why = reasons.get(str(job.jid).split(".")[0], "no reason given")
                observations[job] = Observation(
                    Seen.DONE, JobOutcome.FAILED, f"{ERROR_STATE}, deleted: {why}"
                )
        return observations

    def lost_observation(self, job: Job) -> Observation:
        """A job that left the queue without ever starting, and without an
        accounting record (a job deleted while queued gets none), was deleted
        outside xqute."""
        if _never_started(job):
            return Observation(
                Seen.DONE,
                JobOutcome.CANCELLED,
                "deleted from SGE while queued (qdel outside xqute): it never"
                " started and has no accounting record",
            )
        return super().lost_observation(job)


def _resource_names(value: Any) -> set[str]:
    """``["h_vmem=2G,gpu=1", "h_rt=60"]`` -> {"h_vmem", "gpu", "h_rt"}."""
    names = set()
    for item in as_list(value):
        for part in str(item).split(","):
            names.add(part.split("=", 1)[0].strip())
    return names


def _slots(pe: Any) -> int:
    """The slot count of a ``pe`` value ("smp 4"); 1 when none or a range."""
    count = str(pe).rpartition(" ")[2] if pe else ""
    return int(count) if count.isdigit() and int(count) > 0 else 1


def _never_started(job: Job) -> bool:
    status = job.read_status_file()
    return (status is None or status <= JobStatus.SUBMITTED) and (
        "start" not in job.read_info()
    )
