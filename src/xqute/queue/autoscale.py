"""Autoscaling: how many replicas a pool should have, as a pure function of
samples, a policy and the time.

What a replica is depends on the pool, honestly for this product: a local
pool's replicas are its worker slots (jobs it runs at once); a cluster pool's
are the jobs it keeps submitted to Slurm/SGE (its submission window). Scaling
down never kills a running job: the pool just stops claiming until it runs
fewer jobs than its replicas. (Pilot pools, one cluster job running many queue
jobs, will be a third kind: a pilot is then a replica.)

The rule (``decide``)
---------------------
1. Each metric gives a desired count per sample (Kubernetes HPA's formula):
   ``QueueLength(target)``: ``ceil(pending / target)`` (eligible jobs waiting,
   per replica); ``ResourceUtilization(resource, target_percentage)``:
   ``ceil(replicas * used% / target%)``. Inside its tolerance a metric wants
   the current count. The largest count over the metrics wins.
2. A sample wants to scale up when that count is above its replicas and the
   load reaches ``scale_up.threshold`` (if set); down when it is below and the
   load is at most ``scale_down.threshold``. The load is the highest measured
   utilization (percent), or the queue per replica as a percentage of its
   target when no utilization metric is given. A cluster pool whose submitted
   jobs sit pending in the cluster (``Sample.stalled``) never wants more, and
   wants as many fewer as sit there.
3. The condition must hold for every sample of the last ``duration`` of its
   rule, all taken at the current replica count (a change restarts the
   clock), and the samples must reach back that far.
4. Up goes to the smallest count wanted over that window, at most ``step``
   more; down to the largest, at most ``step`` fewer (HPA's stabilization).
   Always within [min_replicas, max_replicas]: outside it, the count is brought
   back at once. Never up and down in one evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .scaling import AutoscalingPolicy, QueueLength, ResourceUtilization

__all__ = ["Sample", "ScaleDecision", "decide"]


@dataclass(frozen=True, slots=True)
class Sample:
    """What the pool measured at time ``t``.

    ``pending``: eligible jobs waiting that it could run; ``busy``: jobs it
    runs; ``stalled``: jobs it submitted that sit pending in the cluster;
    ``utilization``: percent used per resource ("cpu", "memory", "gpu").
    """

    t: float
    replicas: int
    pending: int = 0
    busy: int = 0
    stalled: int = 0
    utilization: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScaleDecision:
    desired: int
    current: int
    direction: str  # "up", "down" or "none"
    reason: str


def _wanted(sample: Sample, policy: AutoscalingPolicy) -> tuple[int, float]:
    """Rule 1: the count the metrics want for one sample, and its load (%)."""
    current = sample.replicas
    wants, loads = [], []
    for m in policy.metrics:
        if isinstance(m, QueueLength):
            per = sample.pending / current if current else float(sample.pending)
            loads.append(per / m.target * 100)
            if current and abs(per - m.target) <= m.tolerance:
                wants.append(current)
            else:
                wants.append(math.ceil(sample.pending / m.target))
        else:
            used = sample.utilization.get(m.resource, 0.0)
            ratio = used / m.target_percentage
            loads.append(used)
            if abs(ratio - 1) <= m.tolerance:
                wants.append(current)
            else:
                wants.append(math.ceil(current * ratio))
    measured = [
        sample.utilization.get(m.resource, 0.0)
        for m in policy.metrics
        if isinstance(m, ResourceUtilization)
    ]
    return max(wants), max(measured or loads)


def _direction(sample: Sample, policy: AutoscalingPolicy) -> tuple[str, int]:
    """Rule 2 for one sample: ("up"|"down"|"none", the count it wants)."""
    if sample.stalled > 0:
        return "down", max(0, sample.replicas - sample.stalled)
    want, load = _wanted(sample, policy)
    up, down = policy.scale_up.threshold, policy.scale_down.threshold
    if want > sample.replicas and (up is None or load >= up):
        return "up", want
    if want < sample.replicas and (down is None or load <= down):
        return "down", want
    return "none", sample.replicas


def decide(
    samples: Sequence[Sample], policy: AutoscalingPolicy, now: float
) -> ScaleDecision:
    """The replica count ``policy`` wants now (see the module docstring)."""
    lo, hi = policy.min_replicas, policy.max_replicas
    if not samples:
        return ScaleDecision(lo, lo, "none", "no samples yet")
    current = samples[-1].replicas
    if current < lo:
        return ScaleDecision(lo, current, "up", f"below min_replicas {lo}")
    if current > hi:
        return ScaleDecision(hi, current, "down", f"above max_replicas {hi}")
    for direction, rule in (("up", policy.scale_up), ("down", policy.scale_down)):
        window = _window(samples, now - rule.duration_s)
        if window is None or any(s.replicas != current for s in window):
            continue
        wants = [_direction(s, policy) for s in window]
        if any(d != direction for d, _ in wants):
            continue
        counts = [n for _, n in wants]
        if direction == "up":
            target = min(min(counts), current + rule.step, hi)
        else:
            target = max(max(counts), current - rule.step, lo)
        if target == current:
            continue
        why = f"{direction}: wanted {counts[-1]} for {rule.duration_s:g}s"
        return ScaleDecision(target, current, direction, why)
    return ScaleDecision(current, current, "none", "steady")


def _window(samples: Sequence[Sample], since: float) -> list[Sample] | None:
    """The samples a condition must hold in (rule 3): the last one taken at or
    before ``since`` and every later one; None if none reaches back that far."""
    first = None
    for i, s in enumerate(samples):
        if s.t <= since:
            first = i
        else:
            break
    return None if first is None else list(samples[first:])
