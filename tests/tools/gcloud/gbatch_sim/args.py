"""Command line parsing and resource (project/location/job) resolution."""

from __future__ import annotations

import os
import re

from .common import SAFE_SEGMENT_RE
from .errors import ApiError, ArgError, CliError

# --------------------------------------------------------------------------- #
# Command line parsing
# --------------------------------------------------------------------------- #
GLOBAL_VALUE_FLAGS = {
    "--project",
    "--format",
    "--verbosity",
    "--account",
    "--billing-project",
    "--impersonate-service-account",
    "--configuration",
    "--trace-token",
}
GLOBAL_BOOL_FLAGS = {
    "--quiet",
    "-q",
    "--log-http",
    "--no-log-http",
    "--user-output-enabled",
    "--no-user-output-enabled",
    "--help",
    "-h",
}
COMMAND_FLAGS = {
    "submit": (
        {
            "--location",
            "--config",
            "--job-prefix",
            "--machine-type",
            "--priority",
            "--provisioning-model",
            "--network",
            "--subnetwork",
            "--script-text",
            "--script-file-path",
            "--container-image-uri",
            "--container-entrypoint",
            "--container-commands-file",
        },
        {"--no-external-ip-address"},
    ),
    "describe": ({"--location"}, set()),
    "delete": ({"--location"}, set()),
    "list": ({"--location", "--filter", "--limit", "--page-size", "--sort-by"}, set()),
}
ALL_VALUE_FLAGS = GLOBAL_VALUE_FLAGS.union(*(v for v, _ in COMMAND_FLAGS.values()))
ALL_BOOL_FLAGS = GLOBAL_BOOL_FLAGS.union(*(b for _, b in COMMAND_FLAGS.values()))

USAGE = {
    "submit": "gcloud batch jobs submit [[JOB] --location=LOCATION] "
    "--config=PATH_TO_FILE "
    "[--job-prefix=JOB_PREFIX] [--project=PROJECT] [--format=FORMAT]",
    "describe": "gcloud batch jobs describe (JOB : --location=LOCATION) "
    "[--format=FORMAT]",
    "delete": "gcloud batch jobs delete (JOB : --location=LOCATION) [--quiet]",
    "list": "gcloud batch jobs list [--location=LOCATION] [--filter=EXPRESSION] "
    "[--limit=LIMIT] [--page-size=PAGE_SIZE] [--sort-by=[FIELD,...]] [--format=FORMAT]",
}


def split_argv(argv: list[str]):
    """Split argv into positionals and flags using the union of known flags."""
    positionals, flags, unknown = [], {}, []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            positionals += argv[i + 1 :]
            break
        if arg.startswith("-") and arg != "-":
            name, eq, value = arg.partition("=")
            if name in ALL_VALUE_FLAGS:
                if not eq:
                    if i + 1 >= len(argv):
                        raise ArgError(f"argument {name}: expected one argument")
                    i += 1
                    value = argv[i]
                flags[name] = value
            elif name in ALL_BOOL_FLAGS and not eq:
                flags[name] = True
            else:
                unknown.append(arg)
        else:
            positionals.append(arg)
        i += 1
    return positionals, flags, unknown


class Invocation:
    def __init__(self):
        self.cmd = "gcloud"
        self.verb = None
        self.flags: dict = {}
        self.args: list[str] = []

    def parse(self, argv: list[str]) -> Invocation:
        self.argv = argv
        positionals, self.flags, unknown = split_argv(argv)
        track = None
        if positionals and positionals[0] in ("alpha", "beta"):
            track = positionals.pop(0)
        if not positionals and unknown == ["--version"]:
            positionals, unknown = ["version"], []
        if not positionals:
            raise ArgError("Command name argument expected.")
        if positionals[0] == "version":
            self.verb = "version"
            self.args = positionals[1:]
            self._check_flags(unknown, set(), set(), positionals[1:])
            return self
        if positionals[0] == "simulator":
            self.cmd = "gcloud.simulator"
            self.verb = "simulator"
            self.args = positionals[1:] + unknown
            return self
        path = positionals[:3]
        prefix = "gcloud" + (f".{track}" if track else "")
        if path[:1] != ["batch"]:
            raise ArgError(f"Invalid choice: '{path[0]}'.")
        self.cmd = prefix
        if len(path) < 2 or path[1] != "jobs":
            self.cmd = prefix + ".batch"
            got = path[1] if len(path) > 1 else None
            raise ArgError(
                f"Invalid choice: '{got}'."
                if got
                else "Command name argument expected."
            )
        self.cmd = prefix + ".batch.jobs"
        if len(path) < 3 or path[2] not in COMMAND_FLAGS:
            got = path[2] if len(path) > 2 else None
            raise ArgError(
                f"Invalid choice: '{got}'. (simulated: submit, describe, list, delete)"
                if got
                else "Command name argument expected."
            )
        self.verb = path[2]
        self.cmd = f"{prefix}.batch.jobs.{self.verb}"
        self.args = positionals[3:]
        values, bools = COMMAND_FLAGS[self.verb]
        self._check_flags(unknown, values, bools, self.args)
        return self

    def _check_flags(self, unknown, values, bools, extra_positionals):
        if self.flags.get("--help") or self.flags.get("-h"):
            return
        bad = list(unknown)
        for name in self.flags:
            if name not in GLOBAL_VALUE_FLAGS | GLOBAL_BOOL_FLAGS | values | bools:
                bad.append(name)
        max_pos = {"submit": 1, "describe": 1, "delete": 1, "list": 0, "version": 0}[
            self.verb
        ]
        bad += extra_positionals[max_pos:]
        if bad:
            raise ArgError("unrecognized arguments: " + " ".join(bad))

    def flag(self, name: str, default=None):
        return self.flags.get(name, default)


def resolve_project(inv: Invocation) -> str:
    project = inv.flag("--project") or os.environ.get("CLOUDSDK_CORE_PROJECT")
    if not project:
        raise CliError(
            "The required property [project] is not currently set.\n"
            "It can be set on a per-command basis by re-running your command with the "
            "[--project] flag.\n\nYou may set it for your current workspace by "
            "running:\n\n"
            "  $ gcloud config set project VALUE\n\n"
            "or it can be set temporarily by the environment variable "
            "[CLOUDSDK_CORE_PROJECT]"
        )
    return project


def resolve_job_ref(inv: Invocation, required: bool):
    """Return (project, location, job_id or None) from JOB / --location / --project."""
    job_arg = inv.args[0] if inv.args else None
    project = location = job_id = None
    if job_arg and job_arg.startswith("projects/"):
        m = re.fullmatch(r"projects/([^/]+)/locations/([^/]+)/jobs/([^/]+)", job_arg)
        if not m:
            raise CliError(
                f"Error parsing [job].\nThe [job] resource is not properly specified.\n"
                f"Invalid resource name [{job_arg}]: expected "
                "projects/PROJECT/locations/LOCATION/jobs/JOB."
            )
        project, location, job_id = m.groups()
    else:
        job_id = job_arg
        project = resolve_project(inv)
        location = inv.flag("--location") or os.environ.get("CLOUDSDK_BATCH_LOCATION")
    if required and not job_id:
        raise ArgError("argument JOB: Must be specified.")
    if not location:
        raise CliError(
            "Error parsing [job].\nThe [job] resource is not properly specified.\n"
            "Failed to find attribute [location]. The attribute can be set in the "
            "following ways:"
            "\n- provide the argument [--location] on the command line\n"
            "- set the property [batch/location]"
        )
    for what, value in (("project", project), ("location", location)):
        if not SAFE_SEGMENT_RE.match(value):
            raise ApiError("INVALID_ARGUMENT", f"Invalid {what} [{value}].")
    return project, location, job_id
