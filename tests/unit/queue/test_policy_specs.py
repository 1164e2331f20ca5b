"""Quotas, priority classes, queues, resource classes and autoscaling policies
as users write them: validation and the JSON they are stored as."""

import pytest

from xqute.errors import ConfigError
from xqute.queue.classes import NamedQueue, PriorityClass, ResourceClass
from xqute.queue.limits import ResourceLimits, ResourceQuota
from xqute.queue.quota import Limits, Quota
from xqute.queue.scaling import (
    AutoscalingPolicy,
    QueueLength,
    ResourceUtilization,
    ScalingRule,
)

SAMPLES = [
    ResourceQuota(
        name="team-quota",
        namespace="team-a",
        limits=ResourceLimits(cpu=32, memory="128G", gpu=4, storage="1T", jobs=200),
        scopes=["job", "workflow"],
        cohort="shared",
        borrowing_limit=ResourceLimits(cpu=8),
    ),
    PriorityClass(name="high-priority", value=1000, description="For critical jobs"),
    PriorityClass(
        name="batch",
        value=0,
        preemptible=True,
        min_runtime="10m",
        grace_period="30s",
        max_preemptions=3,
        on_preempt="requeue",
    ),
    NamedQueue(name="urgent", priority=100, priority_class="high-priority"),
    ResourceClass(name="large", cpu=4, memory="16G"),
    AutoscalingPolicy(
        name="workflow-scaling",
        metrics=[QueueLength(target=10, tolerance=2), ResourceUtilization("cpu", 70)],
        min_replicas=1,
        max_replicas=10,
        scale_up=ScalingRule(threshold=80, duration="5m", step=2),
        scale_down=ScalingRule(threshold=40, duration="10m", step=1),
    ),
]


@pytest.mark.parametrize("obj", SAMPLES, ids=lambda o: type(o).__name__)
def test_specs_round_trip(obj):
    spec = obj.to_spec()
    again = type(obj).from_spec(obj.name, spec)
    assert again.to_spec() == spec


def test_what_the_policy_gets():
    quota = SAMPLES[0].to_quota()
    assert quota == Quota(
        cpus=32, mem_mb=128 * 1024, gpus=4, storage_mb=1024 * 1024, jobs=200,
        cohort="shared", borrowing_limit=Limits(cpus=8),
    )  # fmt: skip
    batch = SAMPLES[2]
    assert (batch.min_runtime_s, batch.grace_period_s, batch.may_preempt) == (
        600.0,
        30.0,
        True,
    )
    assert PriorityClass(name="x", preemption_policy="never").may_preempt is False
    assert ResourceClass(name="l", cpu=4, memory="16G").request() == {
        "cpus": 4, "memory": 16384, "gpus": 0, "storage": None,
    }  # fmt: skip


def test_yaml_quota_with_flat_limits():
    quota = ResourceQuota.from_spec(
        "team-b-quota",
        {"namespace": "team-b", "cpu": 16, "memory": "64G", "cohort": "shared"},
    )
    assert quota.limits == ResourceLimits(cpu=16, memory=65536)
    assert quota.scopes == ("job", "workflow")


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: PriorityClass(name="x", value="high"),
            "value 'high' must be an integer",
        ),
        (
            lambda: PriorityClass(name="x", on_preempt="delete"),
            "on_preempt 'delete' is not allowed; choose one of: 'requeue', 'cancel'",
        ),
        (lambda: PriorityClass(name="x", min_runtime="soon"), "min_runtime 'soon'"),
        (lambda: PriorityClass(name="bad name"), "'bad name' is not a valid name"),
        (lambda: PriorityClass.from_spec("x", {"valu": 1}), "key 'valu' is not"),
        (lambda: ResourceLimits(cpu=-1), "cpu -1 must be a number >= 0"),
        (lambda: ResourceLimits(memory="lots"), "memory 'lots' is not a memory"),
        (
            lambda: ResourceQuota(name="q", borrowing_limit=ResourceLimits(cpu=1)),
            "borrowing_limit needs a cohort",
        ),
        (lambda: ResourceQuota(name="q", scopes=["jobs"]), "scopes ['jobs']"),
        (
            lambda: ResourceQuota.from_spec("q", {"cpu": 1, "limits": {"cpu": 2}}),
            "not both",
        ),
        (lambda: ResourceQuota.from_spec("q", {"cpus": 1}), "key 'cpus' is not"),
        (lambda: ResourceClass(name="c", cpu=0), "cpu 0 must be an integer >= 1"),
        (
            lambda: AutoscalingPolicy.from_spec("a", {"scale_up": {"stp": 1}}),
            "scale_up: key 'stp' is not allowed",
        ),
        (
            lambda: AutoscalingPolicy.from_spec("a", {"metrics": [{"qlen": 1}]}),
            "must be {queue_length",
        ),
        (
            lambda: AutoscalingPolicy.from_spec(
                "a", {"metrics": [{"queue_length": {}}]}
            ),
            "queue_length: ",
        ),
    ],
)
def test_bad_specs_name_the_value(make, message):
    with pytest.raises(ConfigError) as info:
        make()
    assert message in str(info.value)


def test_a_yaml_target_may_be_a_mapping():
    policy = AutoscalingPolicy.from_spec("a", {"target": {"pool": "hpc"}})
    assert policy.target == "pool:hpc"
