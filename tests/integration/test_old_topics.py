"""An event log written before the code moved under `taskjournal` (topics
`shared.domain.<module>:<Class>.<Event>`) still loads, on both stores."""

import sys

from taskjournal.shared.domain.ids import group_uuid, task_uuid
from taskjournal.shared.domain.task import Task
from taskjournal.shared.domain.task_group import TaskGroup
from taskjournal.shared.domain.time import now_ms
from tests.support.journal import create_task


def _rewrite_topics_to_the_old_layout(journal) -> int:
    table = journal.recorder.events_table_name
    with journal.recorder.datastore.transaction(commit=True) as curs:
        curs.execute(f"UPDATE {table} SET topic = REPLACE(topic, 'taskjournal.shared.', 'shared.')")
        curs.execute(f"SELECT COUNT(*) AS n FROM {table} WHERE topic LIKE 'shared.domain.%'")
        return dict(curs.fetchone())["n"]


def test_events_stored_under_the_old_topics_load(journal):
    now = now_ms()
    task_id = create_task(journal, "p/w", now).task_id
    claimed = journal.claim_work("p/w", "g", "w", 1, now, now + 60_000)
    assert [t.task_id for t in claimed] == [task_id]
    assert _rewrite_topics_to_the_old_layout(journal) >= 4

    group_id = journal.task(task_id).definition["taskGroupId"]
    for aggregate_id in (task_uuid(task_id), group_uuid(group_id)):  # read from the log, not from memory
        try:
            journal.repository.cache.get(aggregate_id, evict=True)
        except KeyError:
            pass
    reloaded = journal.task(task_id)
    assert type(reloaded) is Task and reloaded.state == "running" and reloaded.runs[0]["workerId"] == "w"
    assert type(journal.task_group(group_id)) is TaskGroup
    assert "shared.domain.task" not in sys.modules  # resolved by the registered topic, not by importing a folder
