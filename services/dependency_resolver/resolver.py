"""dependency-resolver: when a task resolves, schedule the dependents it was
the last obstacle for, and record the task group as resolved once none of
its tasks is left unresolved (behaviour spec §5, §6.4; upstream's later fix
of Q1: a failed task never stops other dependents from being considered).

The handler is idempotent: a redelivered event schedules nothing twice (the
Task aggregate refuses a second run 0) and resolves the group at most once
per triggering event. Replicas (and the consumers of one process) compete
for the events of one quorum queue: each event goes to one of them, and a
redelivered copy changes nothing (ADR 0017)."""

import logging
import time
from datetime import datetime

from taskjournal.shared.actor import acting, service
from taskjournal.shared.domain.time import now_ms
from taskjournal.shared.logs import fields
from taskjournal.shared.metrics import REGISTRY

log = logging.getLogger("taskjournal.dependency-resolver")
ROUTING_KEYS = ("Task.RunResolved",)
ACTOR = service("dependency-resolver")

EVENT_AGE = "taskjournal_dependency_event_age_seconds"
HANDLING = "taskjournal_dependency_event_seconds"
REGISTRY.describe(EVENT_AGE, "summary", "from a task's resolution to its event reaching the dependency-resolver")
REGISTRY.describe(HANDLING, "summary", "from an event reaching the dependency-resolver to its changes saved")


def on_task_resolved(journal, event: dict) -> None:
    """Handle one internal `Task.RunResolved` event (body: id, taskGroupId, position, ...)."""
    with acting(ACTOR):
        task_id, now = event["id"], now_ms()
        scheduled = journal.schedule_ready_dependents(task_id, now)
        if scheduled:
            log.info("scheduled dependents", extra=fields(taskId=task_id, dependents=[t.task_id for t in scheduled]))
        group_id = event["taskGroupId"]
        # a dependent of this group just became pending: the group is not resolved, no need to ask
        group_busy = any(task.definition["taskGroupId"] == group_id for task in scheduled)
        if not group_busy and journal.resolve_group_if_done(group_id, event["position"], now):
            log.info("task group resolved", extra=fields(taskGroupId=group_id))


def received(event: dict) -> float:
    """Note an event's arrival (how long after its task resolved); returns
    the arrival time for `handled`."""
    stamp = event.get("timestamp")
    if isinstance(stamp, str):
        try:
            REGISTRY.observe(EVENT_AGE, max(0.0, time.time() - datetime.fromisoformat(stamp).timestamp()))
        except ValueError:
            pass
    return time.perf_counter()


def handled(arrival: float) -> None:
    REGISTRY.observe(HANDLING, time.perf_counter() - arrival)
