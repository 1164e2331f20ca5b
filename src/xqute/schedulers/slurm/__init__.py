"""The Slurm backend (``scheduler="slurm"``): sbatch, one squeue per poll
cycle, sacct, scancel.

- ``scheduler.py`` — ``SlurmScheduler``: options as directives, resources as
  sbatch flags, arrays, the cluster's words in a job's stderr;
- ``directives.py`` — ``#SBATCH`` lines by sbatch's quoting rules;
- ``parse.py`` — ``squeue``/``sacct`` output read into observations.
"""

from __future__ import annotations

from .directives import render_slurm, slurm_option_name, slurm_quote
from .parse import (
    SACCT_FIELDS,
    SQUEUE_FORMAT,
    expand_slurm_ids,
    parse_sacct,
    parse_squeue,
)
from .scheduler import SlurmScheduler, stderr_tail

__all__ = [
    "SACCT_FIELDS",
    "SQUEUE_FORMAT",
    "SlurmScheduler",
    "expand_slurm_ids",
    "parse_sacct",
    "parse_squeue",
    "render_slurm",
    "slurm_option_name",
    "slurm_quote",
    "stderr_tail",
]
