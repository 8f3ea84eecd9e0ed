"""The dependency-resolver's handler is idempotent: a redelivered event
schedules nothing twice and resolves a task group once per transition."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from taskjournal.services.dependency_resolver.resolver import on_task_resolved, on_tasks_resolved
from taskjournal.shared.domain.definition import normalize
from taskjournal.shared.domain.ids import task_id_of
from taskjournal.shared.domain.time import format_ms, now_ms
from taskjournal.shared.journal import open_journal

HOUR = 3_600_000


def _create(journal, group_id: str, dependencies=(), requires="all-completed") -> str:
    task_id, now = task_id_of(uuid.uuid4()), now_ms()
    body = {"taskQueueId": "deps/w", "taskGroupId": group_id, "dependencies": list(dependencies),
            "requires": requires, "created": format_ms(now), "deadline": format_ms(now + HOUR), "payload": {},
            "metadata": {"name": "n", "description": "d", "owner": "o", "source": "https://example.com"}}
    journal.create_task(task_id, normalize(task_id, body, now), now)
    return task_id


def _finish(journal, task_id: str, outcome: str = "completed") -> dict:
    """Claim and resolve the task; the internal event the relay would deliver."""
    now = now_ms()
    journal.claim_task(task_id, 0, "wg", "w", now, now + HOUR)
    journal.report(task_id, 0, outcome, now)
    task = journal.task(task_id)
    return {"id": task_id, "version": task.version, "taskGroupId": task.definition["taskGroupId"],
            "position": journal.recorder.max_notification_id()}


def _group_resolutions(journal, group_id: str) -> int:
    group = journal.task_group(group_id)
    events = journal.events.get(group.id)
    return sum(1 for e in events if type(e).__name__ == "Resolved")


def test_redelivered_resolution_schedules_dependents_and_resolves_group_once(journal):
    group_id = task_id_of(uuid.uuid4())
    first = _create(journal, group_id)
    second = _create(journal, group_id, [first])
    event = _finish(journal, first)

    for _ in range(3):  # the relay delivers at least once
        on_task_resolved(journal, event)

    assert [r["runId"] for r in journal.task(second).runs] == [0]
    assert _group_resolutions(journal, group_id) == 0  # `second` is still pending

    last = _finish(journal, second)
    for _ in range(3):
        on_task_resolved(journal, last)
        on_task_resolved(journal, event)  # a late copy of an older event changes nothing either
    assert _group_resolutions(journal, group_id) == 1

    now = now_ms()  # a rerun reopens the group; its resolution resolves the group again, as upstream
    journal.rerun_task(second, now)
    journal.claim_task(second, 1, "wg", "w", now, now + HOUR)
    journal.report(second, 1, "completed", now)
    on_task_resolved(journal, {**last, "position": journal.recorder.max_notification_id()})
    assert _group_resolutions(journal, group_id) == 2


def test_a_batch_schedules_each_ready_dependent_once_and_resolves_each_finished_group(journal):
    busy, done = task_id_of(uuid.uuid4()), task_id_of(uuid.uuid4())
    a, b = _create(journal, busy), _create(journal, busy)
    both = _create(journal, busy, [a, b])  # ready only once both are done: one dependent for two events
    only_a = _create(journal, busy, [a])
    lone = _create(journal, done)
    batch = [_finish(journal, a), _finish(journal, b), _finish(journal, lone)]

    on_tasks_resolved(journal, batch + batch[:1])  # with a redelivered copy in the same batch

    assert [r["runId"] for r in journal.task(both).runs] == [0]
    assert [r["runId"] for r in journal.task(only_a).runs] == [0]
    assert _group_resolutions(journal, busy) == 0  # its dependents are pending now
    assert _group_resolutions(journal, done) == 1
    on_tasks_resolved(journal, batch)  # the whole batch again changes nothing
    assert [r["runId"] for r in journal.task(both).runs] == [0] and _group_resolutions(journal, done) == 1


def test_failed_task_schedules_all_resolved_dependents_but_not_all_completed_ones(journal):
    group_id = task_id_of(uuid.uuid4())
    failing = _create(journal, group_id)
    strict = _create(journal, group_id, [failing])
    lenient = _create(journal, group_id, [failing], requires="all-resolved")

    on_task_resolved(journal, _finish(journal, failing, "failed"))

    assert journal.task(strict).state == "unscheduled"
    assert journal.task(lenient).state == "pending"


@pytest.mark.postgres
def test_replicas_handling_the_same_events_at_once_schedule_each_dependent_once(postgres_url, tmp_path):
    """Three replicas (each its own Journal) get every event at the same time,
    as after a redelivery racing the first delivery: each dependent gets one
    run, and the group one resolution."""
    replicas = [open_journal(postgres_url, str(tmp_path)) for _ in range(3)]
    journal = replicas[0]
    try:
        group_id = task_id_of(uuid.uuid4())
        roots = [_create(journal, group_id) for _ in range(4)]
        dependents = [_create(journal, group_id, roots[:i + 1]) for i in range(4) for _ in range(5)]
        events = [_finish(journal, root) for root in roots]
        with ThreadPoolExecutor(len(replicas) * 4) as pool:
            for event in events:
                list(pool.map(lambda replica: on_task_resolved(replica, event), replicas * 4))
        runs = {task_id: [r["reasonCreated"] for r in journal.task(task_id).runs] for task_id in dependents}
        assert runs == {task_id: ["scheduled"] for task_id in dependents}
        assert sum(_runs_added(journal, task_id) for task_id in dependents) == len(dependents)

        finals = [_finish(journal, task_id) for task_id in dependents]
        with ThreadPoolExecutor(len(replicas) * 4) as pool:
            list(pool.map(lambda args: on_task_resolved(*args),
                          [(replica, event) for event in finals for replica in replicas]))
        assert _group_resolutions(journal, group_id) == 1
    finally:
        for replica in replicas:
            replica.close()


def _runs_added(journal, task_id: str) -> int:
    events = journal.events.get(journal.task(task_id).id)
    return sum(1 for e in events if type(e).__name__ == "RunAdded")
