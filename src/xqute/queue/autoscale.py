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
1. Each metric gives a desired count per sample. ``QueueLength(target)``:
   ``ceil(pending / target)`` (eligible jobs waiting, per replica: Kubernetes
   HPA's formula). ``ResourceUtilization(resource, target_percentage)``
   depends on what a replica is:
   - a cluster pool's replicas share its load (HPA): ``ceil(replicas * used% /
     target%)``, more replicas when the use is above the target;
   - a local pool's replicas are worker slots on one machine
     (``Sample.slots``): more slots raise the use, so the use is headroom or
     pressure. Above the target (memory or cpu pressure) it wants
     ``floor(replicas * target% / used%)``, fewer, and this wins over every
     other metric; below it, ``ceil(replicas * target% / used%)``, more, but
     only while jobs wait and every slot is busy.
   Inside its tolerance a metric wants the current count; a resource the pool
   does not measure gives no opinion. The largest count over the metrics wins.
2. A sample wants to scale up when that count is above its replicas and the
   load reaches ``scale_up.threshold`` (if set); down when it is below and the
   load is at most ``scale_down.threshold``. A cluster pool's load is the
   highest measured utilization (percent), or the queue per replica as a
   percentage of its target when no utilization metric is given. A local
   pool's load is the queue per replica as a percentage of its target, or
   without a ``QueueLength`` metric its busy slots (percent); its pressure
   (rule 1) scales it down whatever the threshold. A cluster pool whose
   submitted jobs sit pending in the cluster (``Sample.stalled``) never wants
   more, and wants as many fewer as sit there.
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

from .scaling import AutoscalingPolicy, QueueLength

__all__ = ["Sample", "ScaleDecision", "decide"]

#: what a local pool with jobs waiting and no measured use asks for (the
#: policy's max_replicas caps it)
_MANY = 1 << 30


@dataclass(frozen=True, slots=True)
class Sample:
    """What the pool measured at time ``t``.

    ``pending``: eligible jobs waiting that it could run; ``busy``: jobs it
    runs; ``stalled``: jobs it submitted that sit pending in the cluster;
    ``utilization``: percent used per resource ("cpu", "memory", "gpu"; a
    resource left out is not measured); ``slots``: the replicas are a local
    pool's worker slots (rule 1 of the module docstring).
    """

    t: float
    replicas: int
    pending: int = 0
    busy: int = 0
    stalled: int = 0
    utilization: Mapping[str, float] = field(default_factory=dict)
    slots: bool = False


@dataclass(frozen=True, slots=True)
class ScaleDecision:
    desired: int
    current: int
    direction: str  # "up", "down" or "none"
    reason: str


def _wanted(sample: Sample, policy: AutoscalingPolicy) -> tuple[int, float, bool]:
    """Rule 1: the count the metrics want for one sample, its load (%) and
    whether a local pool's pressure asks for it."""
    current = sample.replicas
    wants, queue_loads, measured, pressure = [], [], [], []
    for m in policy.metrics:
        if isinstance(m, QueueLength):
            per = sample.pending / current if current else float(sample.pending)
            queue_loads.append(per / m.target * 100)
            if current and abs(per - m.target) <= m.tolerance:
                wants.append(current)
            else:
                wants.append(math.ceil(sample.pending / m.target))
            continue
        used = sample.utilization.get(m.resource)
        if used is None:
            continue  # not measured here: no opinion
        measured.append(used)
        ratio = used / m.target_percentage
        if abs(ratio - 1) <= m.tolerance:
            wants.append(current)
        elif not sample.slots:
            wants.append(math.ceil(current * ratio))
        elif ratio > 1:
            pressure.append(math.floor(current / ratio))
        elif sample.pending and sample.busy >= current:
            wants.append(math.ceil(current / ratio) if ratio else _MANY)
        else:
            wants.append(current)
    if pressure:
        return min(pressure), 0.0, True
    want = max(wants) if wants else current
    if sample.slots:
        busy = 100.0 * sample.busy / current if current else 0.0
        return want, max(queue_loads) if queue_loads else busy, False
    return want, max(measured or queue_loads or [0.0]), False


def _direction(sample: Sample, policy: AutoscalingPolicy) -> tuple[str, int]:
    """Rule 2 for one sample: ("up"|"down"|"none", the count it wants)."""
    if sample.stalled > 0:
        return "down", max(0, sample.replicas - sample.stalled)
    want, load, pressure = _wanted(sample, policy)
    up, down = policy.scale_up.threshold, policy.scale_down.threshold
    if want > sample.replicas and (up is None or load >= up):
        return "up", want
    if want < sample.replicas and (pressure or down is None or load <= down):
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
