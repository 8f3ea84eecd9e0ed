"""The retention rule: a task whose `expires` is more than 30 minutes past,
and a task group likewise, leaves the log and every read model (upstream
deletes them the same way). Events not yet relayed are kept until they are,
so subscribers never miss one."""

from taskjournal.shared.domain.ids import group_uuid, task_uuid

GRACE_MS = 30 * 60 * 1000
BATCH = 200


def drop_expired(journal, now: int) -> tuple[int, int]:
    """Delete expired tasks and groups; returns how many of each went."""
    cutoff = now - GRACE_MS
    tasks = {task_id: task_uuid(task_id) for task_id in journal.views.expired_tasks(cutoff, BATCH)}
    groups = {group_id: group_uuid(group_id) for group_id in journal.views.expired_groups(cutoff, BATCH)}
    if not tasks and not groups:
        return 0, 0
    dropped_tasks, dropped_groups = journal.store.delete_if_relayed(tasks, groups)
    for aggregate_id in [*(tasks[t] for t in dropped_tasks), *(groups[g] for g in dropped_groups)]:
        journal.forget(aggregate_id)
    return len(dropped_tasks), len(dropped_groups)
