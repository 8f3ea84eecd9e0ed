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


# ---------------------------------------------------------------- artifacts (behaviour spec §8.10)
def expired_artifacts(journal, now: int) -> list[dict]:
    """Artifacts whose `expires` is more than the grace past: {task_id, run_id,
    name, storage_type, details}. Their bytes go first (BlobStore.delete),
    then `drop_artifacts` removes events and rows."""
    return journal.views.expired_artifacts(now - GRACE_MS, BATCH)


def drop_artifacts(journal, rows: list[dict]) -> int:
    """Delete these artifacts' events and rows (each once relayed); how many went."""
    from taskjournal.shared.domain.ids import artifact_uuid

    keys = {(r["task_id"], r["run_id"], r["name"]): artifact_uuid(r["task_id"], r["run_id"], r["name"]) for r in rows}
    if not keys:
        return 0
    dropped = journal.store.delete_artifacts_if_relayed(keys)
    for key in dropped:
        journal.forget(keys[key])
    return len(dropped)


def drop_expired_objects(journal, now: int) -> list[str]:
    """Delete objects past their expiry and uploads unfinished for a day
    (spec §9.10): events and rows. Returns the names gone; the caller deletes
    their bytes (BlobStore.delete), after the rows, so no row outlives its bytes
    unnoticed: bytes without a row are unreachable, never served."""
    from taskjournal.shared.domain.object import object_uuid

    names = journal.views.expired_objects(now, BATCH)
    if not names:
        return []
    dropped = journal.store.delete_objects_if_relayed({name: object_uuid(name) for name in names})
    for name in dropped:
        journal.forget(object_uuid(name))
    return dropped


# ---------------------------------------------------------------- task queues and workers (behaviour spec §3.7)
def drop_expired_worker_info(journal, now: int) -> tuple[int, int]:
    """Delete task queues whose `expires` is more than the grace past, and
    workers whose `expires` and `quarantineUntil` both are; how many of each went."""
    from taskjournal.shared.domain.worker import queue_uuid, worker_uuid

    cutoff = now - GRACE_MS
    queues = {q: queue_uuid(q) for q in journal.views.expired_task_queues(cutoff, BATCH)}
    workers = {key: worker_uuid(*key) for key in journal.views.expired_workers(cutoff, BATCH)}
    if not queues and not workers:
        return 0, 0
    dropped_queues, dropped_workers = journal.store.delete_worker_info_if_relayed(queues, workers)
    for aggregate_id in [*(queues[q] for q in dropped_queues), *(workers[w] for w in dropped_workers)]:
        journal.forget(aggregate_id)
    return len(dropped_queues), len(dropped_workers)
