"""Entry point: dispatches to a command, the job runner or the exec helper."""

from __future__ import annotations

import sys
import time
import traceback

from .args import USAGE, Invocation
from .attempt import exec_runnable
from .commands import cmd_delete, cmd_describe, cmd_list, cmd_simulator, cmd_submit
from .common import FINAL_STATES, HTTP_CODES, SIM_VERSION, log_call
from .errors import ApiError, ArgError, CliError
from .runner import Runner
from .store import set_state


def print_help(inv: Invocation) -> int:
    verb = getattr(inv, "verb", None)
    sys.stdout.write(
        "gcloud batch jobs simulator (xqute tests)\n\nUsage:\n  "
        + (USAGE.get(verb) or "\n  ".join(USAGE.values()))
        + "\n\nSee tests/tools/gcloud/README.md.\n"
    )
    return 0


def main(argv: list[str]) -> int:
    started = time.time()
    inv = Invocation()
    code = 1
    try:
        inv.parse(argv)
        if inv.flags.get("--help") or inv.flags.get("-h"):
            code = print_help(inv)
        elif inv.verb == "version":
            sys.stdout.write(
                f"Google Cloud SDK (xqute gcloud batch simulator {SIM_VERSION})\n"
            )
            code = 0
        else:
            handler = {
                "submit": cmd_submit,
                "describe": cmd_describe,
                "delete": cmd_delete,
                "list": cmd_list,
                "simulator": cmd_simulator,
            }[inv.verb]
            code = handler(inv)
    except CliError as e:
        sys.stderr.write(f"ERROR: ({inv.cmd}) {e.message}\n")
        if isinstance(e, ArgError):
            sys.stderr.write(
                "\nTo search the help text of gcloud commands, run:\n  gcloud help -- "
                "SEARCH_TERMS\n"
            )
        code = e.exit_code
    except ApiError as e:
        if inv.cmd.endswith(".delete"):
            http = HTTP_CODES.get(e.status, 400)
            text = f"ResponseError: code={http}, message={e.message}"
        else:
            text = f"{e.status}: {e.message}"
        sys.stderr.write(f"ERROR: ({inv.cmd}) {text}\n")
        code = 1
    finally:
        log_call(argv, code, started)
    return code


def entry(argv: list[str]) -> int:
    """Entry point of the `gcloud` executable (also runs the hidden helpers)."""
    if len(argv) >= 3 and argv[0] == "__sim-runner":
        return run_job(argv[1], argv[2])
    if len(argv) >= 2 and argv[0] == "__sim-exec":
        exec_runnable(argv[1])  # does not return
    return main(argv)


def run_job(jdir: str, uid: str) -> int:
    runner = Runner(jdir, uid)
    try:
        runner.run()
    except Exception as exc:  # a simulator bug must not leave the job RUNNING forever
        traceback.print_exc()
        suffix = f" [gcloud batch simulator] internal error: {exc!r}"

        def _internal_error(job, sim):
            if job["status"]["state"] in (*FINAL_STATES, "DELETION_IN_PROGRESS"):
                return False
            set_state(job, "FAILED", suffix)

        runner.update(_internal_error)
        if hasattr(runner, "sett"):
            runner.kill_all()
        return 1
    return 0
