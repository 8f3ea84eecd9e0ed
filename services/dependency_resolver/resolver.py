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
# events handled together at most (and the consumer's prefetch): a batch is one query and one commit
MAX_BATCH = 64

EVENT_AGE = "taskjournal_dependency_event_age_seconds"
HANDLING = "taskjournal_dependency_event_seconds"
REGISTRY.describe(EVENT_AGE, "summary", "from a task's resolution to its event reaching the dependency-resolver",
                  labels=())
REGISTRY.describe(HANDLING, "summary", "from an event reaching the dependency-resolver to its changes saved",
                  labels=())


def on_task_resolved(journal, event: dict) -> None:
    """Handle one internal `Task.RunResolved` event (body: id, taskGroupId, position, ...)."""
    on_tasks_resolved(journal, [event])


def on_tasks_resolved(journal, events: list[dict]) -> None:
    """Handle a batch of `Task.RunResolved` events at once: one query finds
    the dependents ready now, one commit schedules them, and each task group
    is checked once (the batch's last position triggers its resolution)."""
    with acting(ACTOR):
        now = now_ms()
        scheduled = journal.schedule_dependents_of([event["id"] for event in events], now)
        if scheduled:
            log.info("scheduled dependents", extra=fields(taskIds=[e["id"] for e in events],
                                                          dependents=[t.task_id for t in scheduled]))
        # a dependent of a group just became pending: that group is not resolved, no need to ask
        busy = {task.definition["taskGroupId"] for task in scheduled}
        for group_id, trigger in _last_positions(events).items():
            if group_id not in busy and journal.resolve_group_if_done(group_id, trigger, now):
                log.info("task group resolved", extra=fields(taskGroupId=group_id))


def _last_positions(events: list[dict]) -> dict[str, int]:
    """Each task group of the batch, with the log position of its latest resolution."""
    groups: dict[str, int] = {}
    for event in events:
        group_id = event["taskGroupId"]
        groups[group_id] = max(groups.get(group_id, event["position"]), event["position"])
    return groups


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
