"""The simulated commands: submit, describe, delete, list, simulator."""

from __future__ import annotations

import contextlib
import copy
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime

from .args import Invocation, resolve_job_ref, resolve_project
from .common import (
    DEFAULT_PASS_ENV,
    JOB_ID_RE,
    SAFE_SEGMENT_RE,
    SELF,
    SIM_VERSION,
    atomic_write_json,
    buckets_dir,
    is_our_runner,
    killpg_quiet,
    pid_alive,
    proc_cmdline,
    proc_starttime,
    read_json,
    rfc3339,
    settings,
    state_dir,
)
from .errors import ApiError, ArgError, CliError
from .filters import compile_filter
from .output import Format, Key, value_str
from .store import (
    JobGone,
    deletion_expired,
    full_name,
    gc_if_expired,
    iter_job_dirs,
    job_dir,
    job_lock,
    jobs_root,
    load_visible,
    set_state,
)
from .validate import check_simulable, task_count, validate_job


# --------------------------------------------------------------------------- #
# Commands
# --------------------------------------------------------------------------- #
def read_config(inv: Invocation) -> dict:
    path = inv.flag("--config")
    if path is None:
        return {}
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(os.path.expanduser(path), encoding="utf-8") as fh:
                text = fh.read()
    except OSError as e:
        raise CliError(
            f"argument --config: Unable to read file [{path}]: {e.strerror}"
        ) from e
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise CliError(
            f"Unable to parse config file: {e} (the simulator accepts JSON configs "
            "only; "
            "YAML configs are not supported)"
        ) from e
    if not isinstance(config, dict):
        raise CliError(
            "Unable to parse config file: the job config must be a JSON object"
        )
    return config


def apply_submit_flags(inv: Invocation, config: dict) -> dict:
    """Apply submit flags the way gcloud does (they edit the parsed config)."""
    config = copy.deepcopy(config)
    script_flags = [
        f for f in ("--script-text", "--script-file-path") if inv.flag(f) is not None
    ]
    container_flags = [
        f
        for f in (
            "--container-image-uri",
            "--container-entrypoint",
            "--container-commands-file",
        )
        if inv.flag(f) is not None
    ]
    if len(script_flags) > 1 or (script_flags and container_flags):
        raise ArgError(
            "argument --script-text: At most one of --container-commands-file "
            "--container-entrypoint --container-image-uri | --script-file-path | "
            "--script-text "
            "can be specified."
        )
    if not (inv.flag("--config") is not None or script_flags or container_flags):
        raise ArgError(
            "Exactly one of (--config | --container-commands-file "
            "--container-entrypoint "
            "--container-image-uri | --script-file-path | --script-text) must be "
            "specified."
        )
    if (inv.flag("--network") is None) != (inv.flag("--subnetwork") is None):
        raise ArgError("argument --network --subnetwork: Must be specified together.")
    if script_flags or container_flags:
        groups = config.setdefault("taskGroups", [])
        if not isinstance(groups, list):
            return config
        if not groups:
            groups.append({"taskSpec": {"runnables": []}})
        spec = (
            groups[0].setdefault("taskSpec", {}) if isinstance(groups[0], dict) else {}
        )
        runnables = spec.setdefault("runnables", []) if isinstance(spec, dict) else []
        if inv.flag("--script-text") is not None:
            runnables.insert(0, {"script": {"text": inv.flag("--script-text")}})
        elif inv.flag("--script-file-path") is not None:
            runnables.insert(0, {"script": {"path": inv.flag("--script-file-path")}})
        else:
            container = {}
            if inv.flag("--container-image-uri") is not None:
                container["imageUri"] = inv.flag("--container-image-uri")
            if inv.flag("--container-entrypoint") is not None:
                container["entrypoint"] = inv.flag("--container-entrypoint")
            if inv.flag("--container-commands-file") is not None:
                try:
                    with open(
                        inv.flag("--container-commands-file"), encoding="utf-8"
                    ) as fh:
                        container["commands"] = fh.read().splitlines()
                except OSError as e:
                    raise CliError(f"Unable to read file: {e}") from e
            runnables.insert(0, {"container": container})
    if inv.flag("--priority") is not None:
        try:
            priority = int(inv.flag("--priority"))
        except ValueError:
            raise ArgError(
                "argument --priority: Value must be an integer; received: "
                f"{inv.flag('--priority')}"
            ) from None
        if not 0 <= priority <= 99:
            raise ArgError(
                "argument --priority: Value must be between 0 and 99; received: "
                f"{priority}"
            )
        config["priority"] = priority
    policy_needed = (
        inv.flag("--machine-type") is not None
        or inv.flag("--provisioning-model") is not None
    )
    if policy_needed:
        alloc = config.setdefault("allocationPolicy", {})
        instances = alloc.setdefault("instances", [])
        if not instances:
            instances.append({})
        policy = instances[0].setdefault("policy", {})
        if inv.flag("--machine-type") is not None:
            policy["machineType"] = inv.flag("--machine-type")
        if inv.flag("--provisioning-model") is not None:
            model = inv.flag("--provisioning-model").upper()
            if model not in ("STANDARD", "SPOT"):
                raise ArgError(
                    "argument --provisioning-model: Invalid choice: "
                    f"'{inv.flag('--provisioning-model')}'."
                )
            policy["provisioningModel"] = model
    if inv.flag("--network") is not None:
        network = config.setdefault("allocationPolicy", {}).setdefault("network", {})
        network.setdefault("networkInterfaces", []).insert(
            0,
            {
                "network": inv.flag("--network"),
                "subnetwork": inv.flag("--subnetwork"),
                "noExternalIpAddress": bool(inv.flag("--no-external-ip-address")),
            },
        )
    return config


def cmd_submit(inv: Invocation) -> int:
    sett = settings()
    project, location, job_id = resolve_job_ref(inv, required=False)
    if job_id and inv.flag("--job-prefix"):
        raise CliError(
            "--job-prefix cannot be specified when JOB ID positional argument is "
            "specified"
        )
    if inv.flag("--job-prefix"):
        job_id = (
            inv.flag("--job-prefix") + "-" + datetime.now().strftime("%Y%m%d-%H%M%S")
        )
    if not job_id:
        job_id = "job-" + uuid.uuid4().hex[:20]
    fmt = Format(
        inv.flag("--format"), "yaml"
    )  # validate --format before doing anything
    config = apply_submit_flags(inv, read_config(inv))
    if not JOB_ID_RE.match(job_id):
        raise ApiError(
            "INVALID_ARGUMENT",
            f'job_id "{job_id}" is invalid: a job ID must be at most 63 characters, '
            "start with a "
            "lowercase letter, contain only lowercase letters, numbers and '-', and "
            "must not end "
            "with '-'.",
        )
    job = validate_job(config)
    check_simulable(job, sett)

    name = full_name(project, location, job_id)
    rand = uuid.uuid4().hex
    uid = f"{job_id[:40]}-{rand[:8]}-{rand[8:12]}-{rand[12:17]}"
    now = time.time()
    group = job["taskGroups"][0]
    count = task_count(group)
    group["name"] = f"{name}/taskGroups/group0"
    group.setdefault("taskCount", str(count))
    group.setdefault("parallelism", str(min(count, 1000)))
    resource = {
        "name": name,
        "uid": uid,
        "createTime": rfc3339(now),
        "updateTime": rfc3339(now),
        "status": {
            "state": "QUEUED",
            "runDuration": "0s",
            "taskGroups": {"group0": {"counts": {"PENDING": str(count)}}},
        },
    }
    resource.update(job)
    resource["taskGroups"] = [group]

    pass_env = {k: os.environ[k] for k in DEFAULT_PASS_ENV if k in os.environ}
    extra = sett["pass_env"].strip()
    if extra == "*":
        pass_env = {
            k: v for k, v in os.environ.items() if not k.startswith("GBATCH_SIM_")
        }
    elif extra:
        pass_env.update(
            {k: os.environ[k] for k in extra.split(",") if k.strip() in os.environ}
        )
    sim = {
        "uid": uid,
        "project": project,
        "location": location,
        "jobId": job_id,
        "submitTime": now,
        "settings": sett,
        "bucketsDir": buckets_dir(),
        "passEnv": pass_env,
        "runnerPid": None,
        "pgids": {},
        "deleteAt": None,
        "tasks": {},
    }

    staging = os.path.join(state_dir(), "staging", uid)
    os.makedirs(staging)
    atomic_write_json(os.path.join(staging, "job.json"), resource)
    atomic_write_json(os.path.join(staging, "sim.json"), sim)
    open(os.path.join(staging, "lock"), "w").close()
    target = job_dir(project, location, job_id)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    for _ in range(3):
        try:
            os.rename(staging, target)
            break
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            if not gc_if_expired(target):
                shutil.rmtree(staging, ignore_errors=True)
                raise ApiError(
                    "ALREADY_EXISTS", f'Resource "{name}" already exists'
                ) from e
    else:
        shutil.rmtree(staging, ignore_errors=True)
        raise ApiError("ALREADY_EXISTS", f'Resource "{name}" already exists')

    with open(os.path.join(target, "runner.log"), "ab") as log:
        subprocess.Popen(
            [sys.executable, SELF, "__sim-runner", target, uid],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd="/",
        )
    sys.stderr.write(f"Job {uid} was successfully submitted.\n")
    sys.stdout.write(fmt.render(resource, single=True))
    return 0


def cmd_describe(inv: Invocation) -> int:
    fmt = Format(inv.flag("--format"), "yaml")
    project, location, job_id = resolve_job_ref(inv, required=True)
    job = load_visible(job_dir(project, location, job_id))
    if job is None:
        raise ApiError(
            "NOT_FOUND",
            f'Resource "{full_name(project, location, job_id)}" was not found',
        )
    sys.stdout.write(fmt.render(job, single=True))
    return 0


def cmd_delete(inv: Invocation) -> int:
    fmt_spec = inv.flag("--format")
    fmt = Format(fmt_spec, "none")
    project, location, job_id = resolve_job_ref(inv, required=True)
    name = full_name(project, location, job_id)
    jdir = job_dir(project, location, job_id)
    not_found = ApiError("NOT_FOUND", f'Resource "{name}" was not found')
    if load_visible(jdir) is None:
        raise not_found
    try:
        with job_lock(jdir) as box:
            job, sim = box["job"], box["sim"]
            if deletion_expired(job, sim):
                raise not_found
            if job["status"]["state"] != "DELETION_IN_PROGRESS":
                set_state(job, "DELETION_IN_PROGRESS")
                sim["deleteAt"] = time.time() + sim["settings"]["delete_delay"]
                box["dirty"] = True
            runner_ok = is_our_runner(sim.get("runnerPid"), sim["uid"])
            # Kill every running runnable's process group (verified by start time).
            for pgid, start in list(sim.get("pgids", {}).values()):
                if start and proc_starttime(pgid) == start:
                    killpg_quiet(pgid, signal.SIGTERM if runner_ok else signal.SIGKILL)
            if runner_ok:
                os.kill(sim["runnerPid"], signal.SIGUSR1)
    except JobGone:
        raise not_found from None
    sys.stderr.write(f"Job {name} deletion is in progress\n")
    if fmt_spec:
        now = rfc3339()
        operation = {
            "name": f"projects/{project}/locations/{location}/operations/operation-"
            f"{int(time.time() * 1000)}-{uuid.uuid4().hex[:12]}",
            "metadata": {
                "@type": "type.googleapis.com/google.cloud.batch.v1.OperationMetadata",
                "apiVersion": "v1",
                "createTime": now,
                "target": name,
                "verb": "delete",
            },
        }
        sys.stdout.write(fmt.render(operation, single=True))
    return 0


def cmd_list(inv: Invocation) -> int:
    fmt = Format(
        inv.flag("--format"),
        "table(name, name.segment(3):label=LOCATION, status.state)",
    )
    project = resolve_project(inv)
    location = inv.flag("--location") or os.environ.get("CLOUDSDK_BATCH_LOCATION")
    if location and not SAFE_SEGMENT_RE.match(location):
        raise ApiError("INVALID_ARGUMENT", f"Invalid location [{location}].")
    filt = compile_filter(inv.flag("--filter"))
    limit = inv.flag("--limit")
    if limit is not None:
        try:
            limit = int(limit)
            if limit < 1:
                raise ValueError
        except ValueError:
            raise ArgError(
                "argument --limit: Value must be greater than or equal to 1; "
                f"received: {limit}"
            ) from None
    page_size = inv.flag("--page-size")
    if page_size is not None:
        try:
            if int(page_size) < 1:
                raise ValueError
        except ValueError:
            raise ArgError(
                "argument --page-size: Value must be greater than or equal to 1; "
                f"received: {page_size}"
            ) from None
    jobs = []
    for jdir in iter_job_dirs(project, location):
        job = load_visible(jdir)
        if job is not None:
            jobs.append(job)
    jobs.sort(key=lambda j: (j.get("createTime", ""), j.get("name", "")))
    sort_by = inv.flag("--sort-by")
    if sort_by:
        for field in reversed([f.strip() for f in sort_by.split(",") if f.strip()]):
            desc = field.startswith("~")
            key = Key(field.lstrip("~"))
            jobs.sort(
                key=lambda j: (key.get(j) is None, value_str(key.get(j))), reverse=desc
            )
    if filt is not None:
        jobs = [j for j in jobs if filt.evaluate(j)]
    if limit is not None:
        jobs = jobs[:limit]
    out = fmt.render(jobs, single=False)
    if not jobs and fmt.name in ("table", "value", "yaml", "default"):
        sys.stderr.write("Listed 0 items.\n")
    sys.stdout.write(out)
    return 0


def cmd_simulator(inv: Invocation) -> int:
    """Simulator-only helpers (not part of gcloud): info, reap [--purge]."""
    sub = inv.args[0] if inv.args else "info"
    if sub == "info":
        print(
            json.dumps(
                {
                    "version": SIM_VERSION,
                    "stateDir": state_dir(),
                    "bucketsDir": buckets_dir(),
                    "settings": settings(),
                },
                indent=2,
            )
        )
        return 0
    if sub == "reap":
        killed = reap_all(purge="--purge" in inv.args[1:])
        print(f"reaped {killed} runner(s)")
        return 0
    raise ArgError(
        f"Invalid choice: '{sub}'. (simulator commands: info, reap [--purge])"
    )


def reap_all(purge: bool = False, timeout: float = 10.0) -> int:
    """Terminate every live runner (and its process groups) under the state dir."""
    runners = []
    root = jobs_root()
    dirs = []
    if os.path.isdir(root):
        for project in os.listdir(root):
            for loc in os.listdir(os.path.join(root, project)):
                ldir = os.path.join(root, project, loc)
                dirs += [os.path.join(ldir, j) for j in os.listdir(ldir)]
    for jdir in dirs:
        try:
            sim = read_json(os.path.join(jdir, "sim.json"))
        except (OSError, json.JSONDecodeError):
            continue
        for pgid, start in sim.get("pgids", {}).values():
            if proc_starttime(pgid) == start:
                killpg_quiet(pgid, signal.SIGKILL)
        if is_our_runner(sim.get("runnerPid"), sim["uid"]):
            os.kill(sim["runnerPid"], signal.SIGTERM)
            runners.append(sim["runnerPid"])
    # Runners whose job directory is already gone are found through /proc.
    prefix = jobs_root() + os.sep
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) in runners:
            continue
        cmd = proc_cmdline(int(pid))
        is_runner = len(cmd) >= 4 and cmd[-3] == "__sim-runner"
        if is_runner and cmd[-2].startswith(prefix) and pid_alive(int(pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGTERM)
            runners.append(int(pid))
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in runners) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in runners:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if purge:
        shutil.rmtree(state_dir(), ignore_errors=True)
    return len(runners)
