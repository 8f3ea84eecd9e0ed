"""dependency-resolver: when a task resolves, schedule the dependents it was
the last obstacle for, and record the task group as resolved once none of
its tasks is left unresolved (behaviour spec §5, §6.4; upstream's later fix
of Q1: a failed task never stops other dependents from being considered).

The handler is idempotent: a redelivered event schedules nothing twice (the
Task aggregate refuses a second run 0) and resolves the group at most once
per triggering event."""

import logging

from taskjournal.shared.actor import acting, service
from taskjournal.shared.domain.time import now_ms
from taskjournal.shared.logs import fields

log = logging.getLogger("taskjournal.dependency-resolver")
ROUTING_KEYS = ("Task.RunResolved",)
ACTOR = service("dependency-resolver")


def on_task_resolved(journal, event: dict) -> None:
    """Handle one internal `Task.RunResolved` event (body: id, taskGroupId, position, ...)."""
    with acting(ACTOR):
        task_id, now = event["id"], now_ms()
        scheduled = journal.schedule_ready_dependents(task_id, now)
        if scheduled:
            log.info("scheduled dependents", extra=fields(taskId=task_id, dependents=scheduled))
        group_id = event["taskGroupId"]
        if journal.resolve_group_if_done(group_id, event["position"], now):
            log.info("task group resolved", extra=fields(taskGroupId=group_id))
