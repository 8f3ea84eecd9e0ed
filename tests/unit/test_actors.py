"""Who did it (ADR 0015): the actor travels with the call and is stored with
each event; events stored before actors read as unknown (a stored log
fixture, exported from a store written by the code before this change)."""

import json
import uuid
from pathlib import Path

import pytest
from eventsourcing.persistence import InfrastructureFactory, StoredEvent
from eventsourcing.utils import Environment

from taskjournal.shared import actor
from taskjournal.shared.domain.task import Task
from taskjournal.shared.store.events import event_mapper, stamp
from taskjournal.shared.store.history import history_rows, status_as_of
from tests.support.domain import pending_task

FIXTURE = Path(__file__).parents[1] / "fixtures" / "events-before-actors.jsonl"


def _mapper():
    return event_mapper(InfrastructureFactory.construct(Environment("t", {"PERSISTENCE_MODULE": "eventsourcing.popo"})))


def _fixture_events() -> list:
    mapper = _mapper()
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    return [mapper.to_domain_event(StoredEvent(uuid.UUID(r["originator_id"]), r["originator_version"], r["topic"],
                                               r["state"].encode())) for r in rows]


def test_the_fixture_was_written_without_actors():
    assert all('"actor"' not in json.loads(line)["state"] for line in FIXTURE.read_text().splitlines())


def test_events_stored_before_actors_are_upcast_to_the_unknown_actor():
    events = _fixture_events()
    assert events and all(event.actor == actor.UNKNOWN for event in events)
    task_events = [e for e in events if isinstance(e, Task.Event) and e.originator_id == events[1].originator_id]
    status = status_as_of(task_events, 2**62)
    assert status is not None and status["state"] == "completed" and len(status["runs"]) == 2


def test_a_stamped_actor_is_stored_and_read_back():
    mapper, task = _mapper(), pending_task()
    who = actor.client("task-client/x", "req-9", issuer="root")
    stamp(task.pending_events, who)
    read = [mapper.to_domain_event(mapper.to_stored_event(e)) for e in task.pending_events]
    assert [e.actor for e in read] == [who, who]
    rows = history_rows(task, task.collect_events())
    assert [json.loads(r["actor"]) for r in rows] == [who, who] and [r["run_id"] for r in rows] == [None, 0]


def test_the_actor_follows_the_call_onto_another_thread():
    from concurrent.futures import ThreadPoolExecutor

    with actor.acting(lambda: actor.client(None, "req-1")), ThreadPoolExecutor(1) as pool:
        seen = pool.submit(actor.in_context(actor.current)).result()
    assert seen == {"kind": "client", "clientId": "anonymous", "requestId": "req-1"}
    assert actor.current() == actor.UNKNOWN


def test_an_issuer_is_recorded_only_when_it_differs_from_the_client():
    assert "issuer" not in actor.client("root", "r", issuer="root")
    assert actor.describe(actor.client("task-client/x", "r", issuer="root")) == "task-client/x via root"
    assert actor.describe(actor.service("scheduler")) == "service scheduler"
    with pytest.raises(ValueError):
        actor.service("someone")


@pytest.mark.parametrize("state", [
    {"plain": 1, "nested": {"a": [1, 2.5, None, "x"]}},
    {"payload": {"_type_": "datetime_iso", "_data_": "2026-01-01T00:00:00+00:00"}},  # a typed value deeper down
    {"big": 2**70},  # beyond orjson's integers
])
def test_the_fast_reader_reads_what_the_library_wrote_as_the_library_does(state):
    from datetime import datetime, timezone

    from eventsourcing.persistence import JSONTranscoder

    mapper = _mapper()
    library = JSONTranscoder()
    for transcoding in mapper.transcoder.types.values():
        library.register(transcoding)
    data = mapper.transcoder.encode({"timestamp": datetime(2026, 1, 1, tzinfo=timezone.utc), **state})
    assert mapper.transcoder.decode(data) == library.decode(data)
