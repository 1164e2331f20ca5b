"""The schedule settings of an ``xqute apply`` file (``apply.SCHEDULER_KEYS``):

```yaml
scheduler:
  timezone: Europe/Berlin          # cron schedules that name no zone
  schedule_defaults:               # keys a schedule of this file does not set
    missed_runs: once              # skip | once | all
    max_catchup: 10
    starting_deadline: 1h
    concurrency: forbid            # allow | forbid | replace
definitions:
  jobs:
    nightly: {command: [report], schedule: {cron: "0 0 * * *"}}   # Berlin
```

The handlers only collect and check the settings (problems at their path, so
``apply`` reports them with the file's line); ``with_defaults`` fills them
into each job's and workflow's ``schedule`` mapping before the model is
validated, so a bad schedule is reported where it is written.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .cron import get_zone
from .schedules import Every

__all__ = ["DEFAULT_KEYS", "defaults", "timezone", "with_defaults"]

#: keys of ``scheduler.schedule_defaults``
DEFAULT_KEYS = ("missed_runs", "max_catchup", "starting_deadline", "concurrency")


def timezone(value: Any, plan: Any, path: tuple[Any, ...]) -> None:
    """``scheduler.timezone``: the zone of the file's cron schedules without one."""
    try:
        get_zone(value)
    except ConfigError as exc:
        plan.problems.append((path, str(exc)))
        return
    plan.schedule_defaults["timezone"] = value


def defaults(value: Any, plan: Any, path: tuple[Any, ...]) -> None:
    """``scheduler.schedule_defaults``: policies for the file's schedules."""
    if not isinstance(value, dict):
        plan.problems.append((path, "must be a map of " + ", ".join(DEFAULT_KEYS)))
        return
    for key, val in value.items():
        if key not in DEFAULT_KEYS:
            allowed = ", ".join(DEFAULT_KEYS)
            plan.problems.append(((*path, key), f"unknown key; allowed: {allowed}"))
            continue
        try:  # checked here, so a bad default is reported once, where it is
            Every(3600, **{key: val})
        except ConfigError as exc:
            plan.problems.append(((*path, key), str(exc)))
        else:
            plan.schedule_defaults[key] = val


def with_defaults(spec: dict[str, Any], plan: Any) -> dict[str, Any]:
    """``spec`` (a job or workflow as written) with the file's schedule
    defaults in its ``schedule`` mapping; anything else is left as it is."""
    schedule = spec.get("schedule")
    if not plan.schedule_defaults or not isinstance(schedule, dict):
        return spec
    keys = set(DEFAULT_KEYS) | ({"timezone"} if "cron" in schedule else set())
    filled = {k: v for k, v in plan.schedule_defaults.items() if k in keys}
    return {**spec, "schedule": {**filled, **schedule}}
