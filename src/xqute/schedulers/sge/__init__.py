"""The Grid Engine backend (``scheduler="sge"``): qsub, one qstat per poll
cycle, qacct, qdel.

- ``scheduler.py`` — ``SgeScheduler``: options as directives, resources as qsub
  flags, arrays, jobs in the error state deleted, queued jobs deleted outside
  xqute told apart;
- ``directives.py`` — ``#$`` lines by qsub's tokenizing rules;
- ``parse.py`` — ``qstat -xml``, ``qacct -j`` and ``qdel`` output, read.
"""

from __future__ import annotations

from .directives import render_sge, sanitize_sge_name, sge_path
from .parse import (
    EQW,
    parse_error_reasons,
    parse_qacct,
    parse_qdel,
    parse_qstat_xml,
)
from .scheduler import SgeScheduler

__all__ = [
    "EQW",
    "SgeScheduler",
    "parse_error_reasons",
    "parse_qacct",
    "parse_qdel",
    "parse_qstat_xml",
    "render_sge",
    "sanitize_sge_name",
    "sge_path",
]
