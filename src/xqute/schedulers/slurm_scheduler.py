"""``xqute.schedulers.slurm_scheduler.SlurmScheduler``: the Slurm backend with
xqute 2.x's scheduler surface (see ``scheduler.py``). Options are ``#SBATCH``
flags (``partition``, ``mem``, ``time`` ...) and the tools' paths (``sbatch``,
``squeue``, ``scancel``), as in 2.x."""

from __future__ import annotations

from .scheduler import SchedulerV2
from .slurm import SlurmScheduler as _Slurm

__all__ = ["SlurmScheduler"]


class SlurmScheduler(SchedulerV2, _Slurm):
    """Jobs through sbatch."""
