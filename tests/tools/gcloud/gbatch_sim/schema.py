"""Field schema of the Batch v1 REST Job resource and the type checker."""

from __future__ import annotations

import json
import re

from .common import STATES, TASK_STATES, camel_to_snake, parse_duration

# --------------------------------------------------------------------------- #
# Config schema (subset of the Batch v1 REST Job resource, all fields known)
# --------------------------------------------------------------------------- #
T = "type.googleapis.com/google.cloud.batch.v1."
OUT = ("out",)  # output-only: accepted and ignored on input
STR, BOOL, INT64, INT32, DUR = (
    ("str",),
    ("bool",),
    ("int64",),
    ("int32",),
    ("duration",),
)


def ENUM(name, *values):
    return ("enum", T + name, values)


def LIST(item):
    return ("list", item)


def MAP(item):
    return ("map", item)


def MSG(name, fields):
    return ("msg", T + name, fields)


ENVIRONMENT = MSG(
    "Environment",
    {
        "variables": MAP(STR),
        "secretVariables": MAP(STR),
        "encryptedVariables": MSG(
            "Environment.KMSEnvMap", {"keyName": STR, "cipherText": STR}
        ),
    },
)
RUNNABLE = MSG(
    "Runnable",
    {
        "container": MSG(
            "Runnable.Container",
            {
                "imageUri": STR,
                "commands": LIST(STR),
                "entrypoint": STR,
                "volumes": LIST(STR),
                "options": STR,
                "blockExternalNetwork": BOOL,
                "username": STR,
                "password": STR,
                "enableImageStreaming": BOOL,
            },
        ),
        "script": MSG("Runnable.Script", {"path": STR, "text": STR}),
        "barrier": MSG("Runnable.Barrier", {"name": STR}),
        "displayName": STR,
        "ignoreExitStatus": BOOL,
        "background": BOOL,
        "alwaysRun": BOOL,
        "environment": ENVIRONMENT,
        "timeout": DUR,
        "labels": MAP(STR),
    },
)
VOLUME = MSG(
    "Volume",
    {
        "nfs": MSG("NFS", {"server": STR, "remotePath": STR}),
        "gcs": MSG("GCS", {"remotePath": STR}),
        "deviceName": STR,
        "mountPath": STR,
        "mountOptions": LIST(STR),
    },
)
TASK_SPEC = MSG(
    "TaskSpec",
    {
        "runnables": LIST(RUNNABLE),
        "computeResource": MSG(
            "ComputeResource",
            {"cpuMilli": INT64, "memoryMib": INT64, "bootDiskMib": INT64},
        ),
        "maxRunDuration": DUR,
        "maxRetryCount": INT32,
        "lifecyclePolicies": LIST(
            MSG(
                "LifecyclePolicy",
                {
                    "action": ENUM(
                        "LifecyclePolicy.Action",
                        "ACTION_UNSPECIFIED",
                        "RETRY_TASK",
                        "FAIL_TASK",
                    ),
                    "actionCondition": MSG(
                        "LifecyclePolicy.ActionCondition", {"exitCodes": LIST(INT32)}
                    ),
                },
            )
        ),
        "environments": MAP(STR),
        "volumes": LIST(VOLUME),
        "environment": ENVIRONMENT,
    },
)
TASK_GROUP = MSG(
    "TaskGroup",
    {
        "name": OUT,
        "taskSpec": TASK_SPEC,
        "taskCount": INT64,
        "parallelism": INT64,
        "schedulingPolicy": ENUM(
            "TaskGroup.SchedulingPolicy",
            "SCHEDULING_POLICY_UNSPECIFIED",
            "AS_SOON_AS_POSSIBLE",
            "IN_ORDER",
        ),
        "taskEnvironments": LIST(ENVIRONMENT),
        "taskCountPerNode": INT64,
        "requireHostsFile": BOOL,
        "permissiveSsh": BOOL,
        "runAsNonRoot": BOOL,
    },
)
DISK = MSG(
    "AllocationPolicy.Disk",
    {"image": STR, "snapshot": STR, "type": STR, "sizeGb": INT64, "diskInterface": STR},
)
INSTANCE_POLICY = MSG(
    "AllocationPolicy.InstancePolicy",
    {
        "machineType": STR,
        "minCpuPlatform": STR,
        "provisioningModel": ENUM(
            "AllocationPolicy.ProvisioningModel",
            "PROVISIONING_MODEL_UNSPECIFIED",
            "STANDARD",
            "SPOT",
            "PREEMPTIBLE",
        ),
        "accelerators": LIST(
            MSG(
                "AllocationPolicy.Accelerator",
                {
                    "type": STR,
                    "count": INT64,
                    "installGpuDrivers": BOOL,
                    "driverVersion": STR,
                },
            )
        ),
        "bootDisk": DISK,
        "disks": LIST(
            MSG(
                "AllocationPolicy.AttachedDisk",
                {"newDisk": DISK, "existingDisk": STR, "deviceName": STR},
            )
        ),
        "reservation": STR,
    },
)
ALLOCATION_POLICY = MSG(
    "AllocationPolicy",
    {
        "location": MSG(
            "AllocationPolicy.LocationPolicy", {"allowedLocations": LIST(STR)}
        ),
        "instances": LIST(
            MSG(
                "AllocationPolicy.InstancePolicyOrTemplate",
                {
                    "policy": INSTANCE_POLICY,
                    "instanceTemplate": STR,
                    "installGpuDrivers": BOOL,
                    "installOpsAgent": BOOL,
                    "blockProjectSshKeys": BOOL,
                },
            )
        ),
        "serviceAccount": MSG("ServiceAccount", {"email": STR, "scopes": LIST(STR)}),
        "labels": MAP(STR),
        "network": MSG(
            "AllocationPolicy.NetworkPolicy",
            {
                "networkInterfaces": LIST(
                    MSG(
                        "AllocationPolicy.NetworkInterface",
                        {
                            "network": STR,
                            "subnetwork": STR,
                            "noExternalIpAddress": BOOL,
                        },
                    )
                )
            },
        ),
        "placement": MSG(
            "AllocationPolicy.PlacementPolicy",
            {"collocation": STR, "maxDistance": INT64},
        ),
        "tags": LIST(STR),
    },
)
JOB_STATE_ENUM = ENUM("JobStatus.State", *STATES)
JOB = MSG(
    "Job",
    {
        "name": OUT,
        "uid": OUT,
        "priority": INT64,
        "taskGroups": LIST(TASK_GROUP),
        "allocationPolicy": ALLOCATION_POLICY,
        "labels": MAP(STR),
        "status": OUT,
        "createTime": OUT,
        "updateTime": OUT,
        "logsPolicy": MSG(
            "LogsPolicy",
            {
                "destination": ENUM(
                    "LogsPolicy.Destination",
                    "DESTINATION_UNSPECIFIED",
                    "CLOUD_LOGGING",
                    "PATH",
                ),
                "logsPath": STR,
                "cloudLoggingOption": MSG(
                    "LogsPolicy.CloudLoggingOption",
                    {"useGenericTaskMonitoredResource": BOOL},
                ),
            },
        ),
        "notifications": LIST(
            MSG(
                "JobNotification",
                {
                    "pubsubTopic": STR,
                    "message": MSG(
                        "JobNotification.Message",
                        {
                            "type": ENUM(
                                "JobNotification.Type",
                                "TYPE_UNSPECIFIED",
                                "JOB_STATE_CHANGED",
                                "TASK_STATE_CHANGED",
                            ),
                            "newJobState": JOB_STATE_ENUM,
                            "newTaskState": ENUM("TaskStatus.State", *TASK_STATES),
                        },
                    ),
                },
            )
        ),
    },
)


def _jv(value) -> str:
    return json.dumps(value)


def check_schema(value, schema, path: str, errors: list[str]):
    """Type-check ``value`` against ``schema``; return the normalized value.

    Error texts follow the Batch API's ("ESF") JSON payload errors; paths use
    the proto (snake_case) field names like the real service does.
    """
    kind = schema[0]
    if kind == "out":
        return None
    if kind == "str":
        if not isinstance(value, str):
            errors.append(f"Invalid value at '{path}' (TYPE_STRING), {_jv(value)}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            errors.append(f"Invalid value at '{path}' (TYPE_BOOL), {_jv(value)}")
        return value
    if kind in ("int64", "int32"):
        label = "TYPE_INT64" if kind == "int64" else "TYPE_INT32"
        number = None
        if isinstance(value, bool):
            number = None
        elif isinstance(value, int):
            number = value
        elif (isinstance(value, float) and value.is_integer()) or (
            isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip() or "x")
        ):
            number = int(value)
        limit = 2**63 if kind == "int64" else 2**31
        if number is None or not (-limit <= number < limit):
            errors.append(f"Invalid value at '{path}' ({label}), {_jv(value)}")
            return value
        # proto3 JSON: int64 is printed as a string, int32 as a number.
        return str(number) if kind == "int64" else number
    if kind == "duration":
        if not isinstance(value, str) or parse_duration(value) is None:
            errors.append(
                f"Invalid value at '{path}' "
                "(type.googleapis.com/google.protobuf.Duration), "
                f"{_jv(value)}"
            )
        return value
    if kind == "enum":
        _, type_name, allowed = schema
        if not isinstance(value, str) or value not in allowed:
            errors.append(f"Invalid value at '{path}' ({type_name}), {_jv(value)}")
        return value
    if kind == "list":
        if not isinstance(value, list):
            errors.append(
                f"Invalid value at '{path}' (repeated field), {_jv(value)}: expected a "
                "JSON array"
            )
            return value
        return [
            check_schema(v, schema[1], f"{path}[{i}]", errors)
            for i, v in enumerate(value)
        ]
    if kind == "map":
        if not isinstance(value, dict):
            errors.append(
                f"Invalid value at '{path}' (map field), {_jv(value)}: expected an "
                "object"
            )
            return value
        out = {}
        for i, (k, v) in enumerate(value.items()):
            out[k] = check_schema(v, schema[1], f"{path}[{i}].value", errors)
        return out
    if kind == "msg":
        _, type_name, fields = schema
        if not isinstance(value, dict):
            errors.append(f"Invalid value at '{path}' ({type_name}), {_jv(value)}")
            return value
        out = {}
        for key, sub in value.items():
            if key not in fields:
                errors.append(
                    f'Invalid JSON payload received. Unknown name "{key}" at '
                    f"'{path}': "
                    "Cannot find field."
                )
                continue
            if sub is None:  # JSON null == field not set
                continue
            normalized = check_schema(
                sub, fields[key], f"{path}.{camel_to_snake(key)}", errors
            )
            if fields[key][0] != "out":
                out[key] = normalized
        return out
    raise AssertionError(f"bad schema {schema!r}")
