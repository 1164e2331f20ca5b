"""The autoscaler's decision on plain data: samples, a policy, the time."""

import pytest

from xqute.errors import ConfigError
from xqute.queue.autoscale import Sample, decide
from xqute.queue.scaling import (
    AutoscalingPolicy,
    QueueLength,
    ResourceUtilization,
    ScalingRule,
)

QUEUE = AutoscalingPolicy(
    name="q",
    metrics=[QueueLength(target=10, tolerance=2)],
    min_replicas=1,
    max_replicas=10,
    scale_up=ScalingRule(duration="30s", step=2),
    scale_down=ScalingRule(duration="60s", step=1),
)
CPU = AutoscalingPolicy(
    name="cpu",
    metrics=[ResourceUtilization("cpu", target_percentage=70)],
    min_replicas=1,
    max_replicas=10,
    scale_up=ScalingRule(threshold=80, duration="5m", step=2),
    scale_down=ScalingRule(threshold=40, duration="10m", step=1),
)


def series(replicas, *, every=10, until=100, **fields):
    """Samples every ``every`` s up to ``until``, all alike."""
    return [Sample(t, replicas, **fields) for t in range(0, until + 1, every)]


@pytest.mark.parametrize(
    "policy, samples, now, desired, direction",
    [
        # 60 pending on 2 replicas (30 each, target 10 +- 2): HPA says 6; step 2
        (QUEUE, series(2, pending=60), 100, 4, "up"),
        # within tolerance: 22 pending on 2 replicas = 11 each
        (QUEUE, series(2, pending=22), 100, 2, "none"),
        # up wanted, but not for the whole 30 s yet
        (QUEUE, series(2, pending=60, every=10, until=20), 20, 2, "none"),
        (
            QUEUE,
            [
                *series(2, pending=0, until=70),
                *[Sample(t, 2, pending=60) for t in (80, 90, 100)],
            ],
            100,
            2,
            "none",
        ),
        # HPA: ceil(2 * 14 / 10) = 3, one short of the step
        (QUEUE, series(2, pending=28), 100, 3, "up"),
        # an empty queue for 60 s: one down
        (QUEUE, series(5, pending=0), 100, 4, "down"),
        # never below min_replicas
        (QUEUE, series(1, pending=0), 100, 1, "none"),
        # out of bounds: back at once
        (QUEUE, series(12, pending=500), 100, 10, "down"),
        (QUEUE, series(0, pending=0), 100, 1, "up"),
        # max_replicas caps a big step
        (QUEUE, series(9, pending=1000), 100, 10, "up"),
        # cpu 95% on 4 replicas, sustained 5 min: ceil(4 * 95 / 70) = 6
        (CPU, series(4, every=60, until=600, utilization={"cpu": 95}), 600, 6, "up"),
        # 75%: above target but below the scale-up threshold of 80
        (CPU, series(4, every=60, until=600, utilization={"cpu": 75}), 600, 4, "none"),
        # 30% for 10 min: down by one
        (CPU, series(4, every=60, until=700, utilization={"cpu": 30}), 700, 3, "down"),
        # 50%: below target but above the scale-down threshold of 40
        (CPU, series(4, every=60, until=700, utilization={"cpu": 50}), 700, 4, "none"),
        # a cluster pool whose jobs sit pending in the cluster: down, whatever
        # the queue says
        (QUEUE, series(6, pending=500, stalled=3), 100, 5, "down"),
    ],
)
def test_scale_decisions(policy, samples, now, desired, direction):
    decision = decide(samples, policy, now)
    assert (decision.desired, decision.direction) == (desired, direction)
    assert decision.current == samples[-1].replicas


def slots(replicas, *, every=60, until=600, **fields):
    """A local pool's samples (its replicas are worker slots)."""
    return series(replicas, every=every, until=until, slots=True, **fields)


GPU = AutoscalingPolicy(
    name="gpu",
    metrics=[ResourceUtilization("gpu", target_percentage=70)],
    max_replicas=10,
)
QUEUE_CPU = AutoscalingPolicy(
    name="queue+cpu",
    metrics=[QueueLength(target=2), ResourceUtilization("cpu", target_percentage=70)],
    max_replicas=10,
    scale_up=ScalingRule(step=4),
    scale_down=ScalingRule(step=4),
)


@pytest.mark.parametrize(
    "policy, samples, now, desired, direction",
    [
        # jobs wait, every slot busy, the machine at 20% of its cpu: more
        # slots (HPA on shared load would have said fewer)
        (CPU, slots(4, pending=20, busy=4, utilization={"cpu": 20}), 600, 6, "up"),
        # ... but not while slots are free (the jobs wait for something else)
        (CPU, slots(4, pending=20, busy=2, utilization={"cpu": 20}), 600, 4, "none"),
        # ... nor with nothing waiting
        (CPU, slots(4, busy=4, utilization={"cpu": 20}), 600, 4, "none"),
        # the machine at 95%: fewer slots (floor(4 * 70/95) = 2, one step),
        # whatever the scale-down threshold (40) says of the busy slots
        (
            CPU,
            slots(4, pending=20, busy=4, until=700, utilization={"cpu": 95}),
            700,
            3,
            "down",
        ),
        # memory pressure wins over a long queue
        (
            QUEUE_CPU,
            [Sample(0, 4, pending=40, busy=4, utilization={"cpu": 140}, slots=True)],
            0,
            2,
            "down",
        ),
        (
            QUEUE_CPU,
            [Sample(0, 4, pending=40, busy=4, utilization={"cpu": 60}, slots=True)],
            0,
            8,
            "up",
        ),
        # a resource the pool does not measure (a local pool's GPUs) has no say
        (GPU, slots(4, pending=20, busy=4), 600, 4, "none"),
        # a cluster pool's replicas share the load: HPA
        (
            GPU,
            series(4, every=60, until=600, utilization={"gpu": 35}),
            600,
            3,
            "down",
        ),
    ],
)
def test_local_slots_follow_the_machine_s_headroom(
    policy, samples, now, desired, direction
):
    decision = decide(samples, policy, now)
    assert (decision.desired, decision.direction) == (desired, direction)


def test_a_change_restarts_the_clock():
    """Just scaled from 2 to 4: the samples at 4 do not span 30 s yet."""
    samples = [
        *series(2, pending=80, until=50),
        *[Sample(t, 4, pending=80) for t in (60, 70, 80)],
    ]
    assert decide(samples, QUEUE, 80).direction == "none"
    samples += [Sample(t, 4, pending=80) for t in (90, 100)]
    assert decide(samples, QUEUE, 100).desired == 6


def test_up_takes_the_smallest_want_of_the_window_down_the_largest():
    samples = [
        Sample(t, 2, pending=p)
        for t, p in [(60, 90), (70, 40), (80, 90), (90, 90), (100, 90)]
    ]
    # 40 pending on 2 = HPA 4, the others 9: up to 4 (the window's minimum)
    assert decide(samples, QUEUE, 100).desired == 4
    down = AutoscalingPolicy(
        name="d",
        metrics=[QueueLength(10)],
        max_replicas=10,
        scale_down=ScalingRule(duration=30, step=5),
    )
    samples = [
        Sample(t, 8, pending=p) for t, p in [(70, 0), (80, 30), (90, 10), (100, 0)]
    ]
    assert decide(samples, down, 100).desired == 3  # max(0, 3, 1, 0), step 5


def test_never_up_and_down_at_once():
    """Mixed samples want neither direction for the whole window."""
    policy = AutoscalingPolicy(
        name="m",
        metrics=[QueueLength(10)],
        max_replicas=10,
        scale_up=ScalingRule(duration=20),
        scale_down=ScalingRule(duration=20),
    )
    for pattern in ([0, 100, 0], [100, 0, 100], [0, 0, 100], [100, 100, 0]):
        samples = [
            Sample(t, 4, pending=p) for t, p in zip((80, 90, 100), pattern, strict=True)
        ]
        assert decide(samples, policy, 100).direction == "none", pattern


def test_the_max_over_metrics_wins():
    policy = AutoscalingPolicy(
        name="both",
        metrics=[QueueLength(10), ResourceUtilization("memory", 50)],
        max_replicas=20,
        scale_up=ScalingRule(step=10),
    )
    samples = [Sample(0, 4, pending=20, utilization={"memory": 100})]
    assert decide(samples, policy, 0).desired == 8  # memory: 4 * 100/50


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: QueueLength(0), "QueueLength target 0 must be a number > 0"),
        (lambda: ResourceUtilization("disk", 50), "resource 'disk' is not allowed"),
        (lambda: ScalingRule(duration="5 parsecs"), "duration '5 parsecs'"),
        (lambda: ScalingRule(step=0), "step 0 must be an integer >= 1"),
        (lambda: AutoscalingPolicy(name="x", target="node:1"), "'pool:NAME'"),
        (
            lambda: AutoscalingPolicy(name="x", min_replicas=3, max_replicas=2),
            "max_replicas 2 < min_replicas 3",
        ),
        (lambda: AutoscalingPolicy(name="x", metrics=[]), "at least one"),
    ],
)
def test_bad_policies_say_what_is_wrong(make, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        make()


def test_no_samples_no_change():
    assert decide([], QUEUE, 0).direction == "none"
