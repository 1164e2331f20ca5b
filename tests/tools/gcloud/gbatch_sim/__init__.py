"""Simulator of the `gcloud batch jobs` CLI for xqute's gbatch backend tests.

Standard library only; never imports xqute. The executable entry point is
``tests/tools/gcloud/gcloud``; see ``tests/tools/gcloud/README.md``.

Modules: ``cli`` (entry point) -> ``args`` (argv parsing) -> ``commands``
(submit/describe/list/delete) using ``schema``/``validate`` (config checks),
``store`` (on-disk jobs), ``output`` (--format) and ``filters`` (--filter).
``runner`` (+ ``attempt``) is the detached process that runs one job.
"""
