"""Stored events outlive their classes: a changed event class upcasts the old
stored state when it is read (ADR 0001)."""

import uuid

from eventsourcing.application import Application
from eventsourcing.utils import _topic_cache, register_topic

from taskjournal.shared.domain.definition import normalize
from taskjournal.shared.domain.ids import task_id_of
from taskjournal.shared.domain.task import Task
from taskjournal.shared.domain.time import format_ms

NOW = 1_800_000_000_000


def _task() -> Task:
    task_id = task_id_of(uuid.uuid4())
    body = {"taskQueueId": "p/w", "created": format_ms(NOW), "deadline": format_ms(NOW + 3_600_000),
            "payload": {}, "metadata": {"name": "n", "description": "d", "owner": "o@example.com",
                                        "source": "https://example.com"}}
    task = Task(task_id=task_id, definition=normalize(task_id, body, NOW))
    task.schedule(NOW)
    return task


class RunAddedV2(Task.RunAdded):
    """A future RunAdded that also records who scheduled the run."""

    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict) -> None:
        state["scheduled_by"] = "unknown"


def test_version_one_run_added_is_upcast_when_read_by_a_version_two_class():
    app = Application()
    task = _task()
    app.save(task)
    stored = app.recorder.select_events(task.id)[1]
    assert stored.topic.endswith("Task.RunAdded")

    saved_cache = dict(_topic_cache)
    try:
        _topic_cache.pop(stored.topic, None)  # as if the v1 class had been replaced by the v2 class
        register_topic(stored.topic, RunAddedV2)
        event = app.mapper.to_domain_event(stored)
    finally:
        _topic_cache.clear()
        _topic_cache.update(saved_cache)

    assert isinstance(event, RunAddedV2)
    assert event.scheduled_by == "unknown"
    assert event.reason_created == "scheduled"


def test_replaying_stored_events_rebuilds_the_same_status():
    app = Application()
    task = _task()
    task.claim_work(0, "wg", "w1", NOW + 1, NOW + 1_200_000)
    task.report(0, "completed", NOW + 2)
    app.save(task)
    assert app.repository.get(task.id).status() == task.status()
