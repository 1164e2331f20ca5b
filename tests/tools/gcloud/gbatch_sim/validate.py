"""Semantic validation of job configs and simulator limitations."""

from __future__ import annotations

import os

from .common import (
    BUCKET_RE,
    ENV_NAME_RE,
    LABEL_KEY_RE,
    LABEL_VALUE_RE,
    camel_to_snake,
    parse_duration,
)
from .errors import ApiError, sim_limitation
from .schema import JOB, check_schema


def _label_errors(labels: dict, where: str) -> list[str]:
    errors = []
    if len(labels) > 64:
        errors.append(f"{where}: at most 64 labels are allowed, got {len(labels)}.")
    for key, value in labels.items():
        if not LABEL_KEY_RE.match(key):
            errors.append(
                f"{where}: invalid label key {key!r}: keys must be 1-63 characters, "
                "start with a "
                "lowercase letter and contain only lowercase letters, digits, '_' and "
                "'-'."
            )
        elif key.startswith(("goog-", "google-")):
            errors.append(
                f"{where}: label key {key!r} is reserved (goog-/google- prefix)."
            )
        if isinstance(value, str) and not LABEL_VALUE_RE.match(value):
            errors.append(
                f"{where}: invalid value {value!r} for label {key!r}: values must be "
                "at most 63 "
                "characters of lowercase letters, digits, '_' and '-'."
            )
    return errors


def validate_job(config) -> dict:
    """Validate a Job config; return the normalized (echoable) job dict.

    Raises ApiError(INVALID_ARGUMENT) listing every problem found.
    """
    errors: list[str] = []
    job = check_schema(config, JOB, "job", errors)
    if errors:
        raise ApiError("INVALID_ARGUMENT", "\n".join(errors))

    groups = job.get("taskGroups") or []
    if len(groups) != 1:
        errors.append(
            f"job.task_groups: exactly one TaskGroup is supported, got {len(groups)}."
        )
    if "priority" in job and not (0 <= int(job["priority"]) < 100):
        errors.append(f"job.priority: must be in [0, 100), got {job['priority']}.")
    errors += _label_errors(job.get("labels", {}), "job.labels")
    errors += _label_errors(
        job.get("allocationPolicy", {}).get("labels", {}),
        "job.allocation_policy.labels",
    )

    disk_names = set()
    instances = job.get("allocationPolicy", {}).get("instances", [])
    if len(instances) > 1:
        errors.append(
            "job.allocation_policy.instances: only instances[0] is supported."
        )
    for i, inst in enumerate(instances):
        if ("policy" in inst) == ("instanceTemplate" in inst):
            errors.append(
                f"job.allocation_policy.instances[{i}]: exactly one of policy or "
                "instance_template must be set."
            )
        for d, disk in enumerate(inst.get("policy", {}).get("disks", [])):
            if ("newDisk" in disk) == ("existingDisk" in disk):
                errors.append(
                    f"job.allocation_policy.instances[{i}].policy.disks[{d}]: exactly "
                    "one of "
                    "new_disk or existing_disk must be set."
                )
            if disk.get("deviceName"):
                disk_names.add(disk["deviceName"])
    email = job.get("allocationPolicy", {}).get("serviceAccount", {}).get("email")
    if email is not None and "@" not in email:
        errors.append(
            f"job.allocation_policy.service_account.email: invalid email {email!r}."
        )

    logs = job.get("logsPolicy", {})
    if logs.get("destination") == "PATH" and not logs.get("logsPath"):
        errors.append("job.logs_policy.logs_path: required when destination is PATH.")
    if logs.get("logsPath") and not logs["logsPath"].startswith("/"):
        errors.append("job.logs_policy.logs_path: must be an absolute path.")

    for g, group in enumerate(groups[:1]):
        gp = f"job.task_groups[{g}]"
        spec = group.get("taskSpec")
        if spec is None:
            errors.append(f"{gp}.task_spec: required field is missing.")
            continue
        count = int(group.get("taskCount", "1"))
        envs = group.get("taskEnvironments", [])
        if envs:
            count = len(envs)
        if count < 1:
            errors.append(f"{gp}.task_count: must be >= 1, got {count}.")
        if "parallelism" in group and int(group["parallelism"]) < 1:
            errors.append(
                f"{gp}.parallelism: must be >= 1, got {group['parallelism']}."
            )
        if (
            group.get("schedulingPolicy") == "IN_ORDER"
            and int(group.get("parallelism", "1")) != 1
        ):
            errors.append(
                f"{gp}.parallelism: must be 1 when scheduling_policy is IN_ORDER."
            )
        if "taskCountPerNode" in group and int(group["taskCountPerNode"]) < 1:
            errors.append(f"{gp}.task_count_per_node: must be >= 1.")

        sp = f"{gp}.task_spec"
        runnables = spec.get("runnables", [])
        if not runnables:
            errors.append(f"{sp}.runnables: at least one runnable is required.")
        for r, run in enumerate(runnables):
            rp = f"{sp}.runnables[{r}]"
            kinds = [k for k in ("container", "script", "barrier") if k in run]
            if len(kinds) != 1:
                errors.append(
                    f"{rp}: exactly one of container, script or barrier must be set."
                )
            if "script" in run:
                script = run["script"]
                if ("path" in script) == ("text" in script):
                    errors.append(
                        f"{rp}.script: exactly one of path or text must be set."
                    )
                elif "text" in script and not script["text"].strip():
                    errors.append(f"{rp}.script.text: must not be empty.")
                elif "path" in script and not script["path"].startswith("/"):
                    errors.append(f"{rp}.script.path: must be an absolute path.")
            if "container" in run and not run["container"].get("imageUri"):
                errors.append(f"{rp}.container.image_uri: required field is missing.")
            if "timeout" in run and parse_duration(run["timeout"]) < 0:
                errors.append(f"{rp}.timeout: must not be negative.")
            env = run.get("environment", {}).get("variables", {})
            errors += [
                f"{rp}.environment.variables: invalid name {k!r}."
                for k in env
                if not ENV_NAME_RE.match(k)
            ]

        if "maxRetryCount" in spec and not (0 <= spec["maxRetryCount"] <= 10):
            errors.append(
                f"{sp}.max_retry_count: must be in [0, 10], got "
                f"{spec['maxRetryCount']}."
            )
        if "maxRunDuration" in spec and parse_duration(spec["maxRunDuration"]) < 0:
            errors.append(f"{sp}.max_run_duration: must not be negative.")
        for key, value in spec.get("computeResource", {}).items():
            if int(value) < 0:
                errors.append(
                    f"{sp}.compute_resource.{camel_to_snake(key)}: must be >= 0."
                )
        policies = spec.get("lifecyclePolicies", [])
        if len(policies) > 1:
            errors.append(
                f"{sp}.lifecycle_policies: only one lifecycle policy is supported."
            )
        env = spec.get("environment", {}).get("variables", {})
        errors += [
            f"{sp}.environment.variables: invalid name {k!r}."
            for k in env
            if not ENV_NAME_RE.match(k)
        ]

        mount_paths = set()
        for v, vol in enumerate(spec.get("volumes", [])):
            vp = f"{sp}.volumes[{v}]"
            sources = [k for k in ("gcs", "nfs", "deviceName") if k in vol]
            if len(sources) != 1:
                errors.append(
                    f"{vp}: exactly one of gcs, nfs or device_name must be set."
                )
            mp = vol.get("mountPath")
            if not mp:
                errors.append(f"{vp}.mount_path: required field is missing.")
            elif not mp.startswith("/") or os.path.normpath(mp) == "/":
                errors.append(
                    f"{vp}.mount_path: must be an absolute path other than '/': {mp!r}."
                )
            elif os.path.normpath(mp) in mount_paths:
                errors.append(
                    f"{vp}.mount_path: {mp!r} is used by more than one volume."
                )
            else:
                mount_paths.add(os.path.normpath(mp))
            if "gcs" in vol:
                remote = vol["gcs"].get("remotePath", "")
                bucket = remote.split("/", 1)[0]
                if remote.startswith("gs://"):
                    errors.append(
                        f"{vp}.gcs.remote_path: must be 'bucket' or 'bucket/path' "
                        "without the "
                        f"gs:// scheme, got {remote!r}."
                    )
                elif not BUCKET_RE.match(bucket) or ".." in remote.split("/"):
                    errors.append(
                        f"{vp}.gcs.remote_path: invalid bucket path {remote!r}."
                    )
            if "nfs" in vol and not (
                vol["nfs"].get("server") and vol["nfs"].get("remotePath")
            ):
                errors.append(f"{vp}.nfs: server and remote_path are required.")
            if "deviceName" in vol and vol["deviceName"] not in disk_names:
                errors.append(
                    f"{vp}.device_name: {vol['deviceName']!r} does not match any "
                    "allocation_policy.instances[0].policy.disks[].device_name."
                )
    if errors:
        raise ApiError("INVALID_ARGUMENT", "\n".join(errors))
    return job


def check_simulable(job: dict, sett: dict) -> None:
    """Reject (clearly) valid configs the simulator cannot run honestly."""
    group = job["taskGroups"][0]
    spec = group["taskSpec"]
    for r, run in enumerate(spec.get("runnables", [])):
        if "container" in run:
            raise sim_limitation(
                f"taskGroups[0].taskSpec.runnables[{r}] is a container runnable: the "
                "simulator "
                "does not run container runnables (only script runnables are executed)."
            )
    for v, vol in enumerate(spec.get("volumes", [])):
        if "gcs" not in vol:
            kind = "nfs" if "nfs" in vol else "deviceName"
            raise sim_limitation(
                f"taskGroups[0].taskSpec.volumes[{v}] is a {kind} volume: only gcs "
                "volumes are "
                "simulated (mapped to $GBATCH_SIM_BUCKETS_DIR)."
            )
    for env in (
        [spec.get("environment", {})]
        + group.get("taskEnvironments", [])
        + [r.get("environment", {}) for r in spec.get("runnables", [])]
    ):
        if env.get("secretVariables") or env.get("encryptedVariables"):
            raise sim_limitation(
                "secretVariables / encryptedVariables are not resolved by the "
                "simulator."
            )
    count = task_count(group)
    has_barrier = any("barrier" in r for r in spec.get("runnables", []))
    if has_barrier and count > 1 and int(group.get("parallelism", str(count))) < count:
        raise sim_limitation(
            "barrier runnables need parallelism >= taskCount in the simulator."
        )
    if count > 1000:
        raise sim_limitation(
            f"taskCount {count} is above the simulator's limit of 1000."
        )


def task_count(group: dict) -> int:
    if group.get("taskEnvironments"):
        return len(group["taskEnvironments"])
    return int(group.get("taskCount", "1"))
