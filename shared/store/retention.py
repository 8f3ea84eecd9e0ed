"""The retention rule: a task whose `expires` is more than 30 minutes past,
and a task group likewise, leaves the log and every read model (upstream
deletes them the same way). Events not yet relayed are kept until they are,
so subscribers never miss one."""

from taskjournal.shared.domain.ids import artifact_uuid, group_uuid, task_uuid
from taskjournal.shared.domain.object import object_uuid
from taskjournal.shared.domain.worker import queue_uuid, worker_uuid

from .port import Doomed

GRACE_MS = 30 * 60 * 1000
BATCH = 200
# A task's read-model rows; dependency rows go with the dependent.
TASK_ROWS = ("delete_task", "delete_task_pending", "delete_task_claim", "delete_task_dependencies",
             "delete_task_worker_runs", "delete_task_history")


def drop_expired(journal, now: int) -> tuple[int, int]:
    """Delete expired tasks and groups; returns how many of each went."""
    cutoff = now - GRACE_MS
    tasks = [Doomed(("task", t), task_uuid(t), tuple((row, {"task_id": t}) for row in TASK_ROWS))
             for t in journal.views.expired_tasks(cutoff, BATCH)]
    groups = [Doomed(("group", g), group_uuid(g), (("delete_task_group", {"task_group_id": g}),
                                                       ("delete_group_history", {"task_group_id": g})))
              for g in journal.views.expired_groups(cutoff, BATCH)]
    dropped = _drop(journal, tasks + groups)
    return sum(kind == "task" for kind, _ in dropped), sum(kind == "group" for kind, _ in dropped)


def _drop(journal, doomed: list[Doomed]) -> list:
    """Delete what is relayed already; the keys of what went."""
    if not doomed:
        return []
    dropped = journal.store.delete_if_relayed(doomed)
    for item in dropped:
        journal.forget(item.aggregate_id)
    return [item.key for item in dropped]


# ---------------------------------------------------------------- artifacts (behaviour spec §8.10)
def expired_artifacts(journal, now: int) -> list[dict]:
    """Artifacts whose `expires` is more than the grace past: {task_id, run_id,
    name, storage_type, details}. Their bytes go first (BlobStore.delete),
    then `drop_artifacts` removes events and rows."""
    return journal.views.expired_artifacts(now - GRACE_MS, BATCH)


def drop_artifacts(journal, rows: list[dict]) -> int:
    """Delete these artifacts' events and rows (each once relayed); how many went."""
    doomed = [Doomed(None, artifact_uuid(r["task_id"], r["run_id"], r["name"]),
                     (("delete_artifact", {"task_id": r["task_id"], "run_id": r["run_id"], "name": r["name"]}),))
              for r in rows]
    return len(_drop(journal, doomed))


def drop_expired_objects(journal, now: int) -> list[str]:
    """Delete objects past their expiry and uploads unfinished for a day
    (spec §9.10): events and rows. Returns the names gone; the caller deletes
    their bytes (BlobStore.delete), after the rows, so no row outlives its bytes
    unnoticed: bytes without a row are unreachable, never served."""
    return _drop(journal, [Doomed(name, object_uuid(name), (("delete_object", {"name": name}),))
                           for name in journal.views.expired_objects(now, BATCH)])


# ---------------------------------------------------------------- task queues and workers (behaviour spec §3.7)
def drop_expired_worker_info(journal, now: int) -> tuple[int, int]:
    """Delete task queues whose `expires` is more than the grace past, and
    workers whose `expires` and `quarantineUntil` both are; how many of each went."""
    cutoff = now - GRACE_MS
    queues = [Doomed("queue", queue_uuid(q), (("delete_task_queue", {"task_queue_id": q}),))
              for q in journal.views.expired_task_queues(cutoff, BATCH)]
    workers = [Doomed("worker", worker_uuid(q, g, w),
                      (("delete_worker", {"task_queue_id": q, "worker_group": g, "worker_id": w}),))
               for q, g, w in journal.views.expired_workers(cutoff, BATCH)]
    dropped = _drop(journal, queues + workers)
    return dropped.count("queue"), dropped.count("worker")
