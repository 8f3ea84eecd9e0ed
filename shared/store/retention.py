"""The retention rule: a task whose `expires` is more than 30 minutes past,
and a task group likewise, leaves the log and every read model (upstream
deletes them the same way). Events not yet relayed are kept until they are,
so subscribers never miss one."""

from taskjournal.shared.domain.ids import group_uuid, task_uuid

GRACE_MS = 30 * 60 * 1000
BATCH = 200
# Read-model rows of an expired task; dependency rows go with the dependent.
TASK_ROWS = ("tj_tasks", "tj_pending", "tj_claims")


def drop_expired(journal, now: int) -> tuple[int, int]:
    """Delete expired tasks and groups; returns how many of each went."""
    cutoff = now - GRACE_MS
    tasks = journal.views.expired_tasks(cutoff, BATCH)
    groups = journal.views.expired_groups(cutoff, BATCH)
    relayed = journal.views.relayed_position()
    mark = "%s" if journal.views.dialect == "postgres" else "?"
    events = journal.recorder.events_table_name
    dropped_tasks = dropped_groups = 0
    with journal.recorder.datastore.transaction(commit=True) as curs:
        for task_id in tasks:
            if _delete_events(curs, events, mark, task_uuid(task_id), relayed, journal.views.dialect):
                for table in TASK_ROWS:
                    curs.execute(f"DELETE FROM {table} WHERE task_id = {mark}", (task_id,))
                curs.execute(f"DELETE FROM tj_dependencies WHERE dependent_task_id = {mark}", (task_id,))
                dropped_tasks += 1
        for group_id in groups:
            if _delete_events(curs, events, mark, group_uuid(group_id), relayed, journal.views.dialect):
                curs.execute(f"DELETE FROM tj_task_groups WHERE task_group_id = {mark}", (group_id,))
                dropped_groups += 1
    for aggregate_id in [*map(task_uuid, tasks), *map(group_uuid, groups)]:
        _forget(journal, aggregate_id)
    return dropped_tasks, dropped_groups


def _forget(journal, aggregate_id) -> None:
    cache = journal.repository.cache
    if cache is not None:
        try:
            cache.get(aggregate_id, evict=True)
        except KeyError:
            pass


def _delete_events(curs, table: str, mark: str, aggregate_id, relayed: int | None, dialect: str) -> bool:
    key = aggregate_id if dialect == "postgres" else aggregate_id.hex
    if relayed is not None:
        position = "notification_id" if dialect == "postgres" else "rowid"
        curs.execute(f"SELECT MAX({position}) AS last FROM {table} WHERE originator_id = {mark}", (key,))
        last = dict(curs.fetchone())["last"]
        if last is not None and last > relayed:
            return False
    curs.execute(f"DELETE FROM {table} WHERE originator_id = {mark}", (key,))
    return True
