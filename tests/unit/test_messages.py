"""Pulse messages and internal events derived from the log (shared/messages.py):
every body is checked against the official v64.2.5 message schema."""

import json
import uuid

import orjson
import pytest

from taskjournal.shared.domain.definition import normalize
from taskjournal.shared.domain.ids import task_id_of
from taskjournal.shared.domain.task import Task
from taskjournal.shared.domain.task_group import TaskGroup
from taskjournal.shared.domain.time import format_ms
from taskjournal.shared.messages import (EXCHANGES, LATER_EXCHANGES, InternalEvent, PulseMessage, internal_event_for,
                                         messages_for, topic_matches)

from tests.support import reference

NOW = 1_700_000_000_000  # 2023-11-14T22:13:20.000Z
HOUR = 3600 * 1000
CLAIM_TIMEOUT = 20 * 60 * 1000

BASE = "https://reference.invalid"


def message_validator():
    """A function checking a PulseMessage against its exchange's schema."""
    exchanges_json = reference.require("references/queue/v1/exchanges.json")
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT6

    resources = []
    for path in reference.require("schemas").rglob("*.json"):
        schema = json.loads(path.read_text())
        if "$id" in schema:
            schema = {**schema, "$id": BASE + schema["$id"]}
            schema.pop("$schema", None)
            resources.append((schema["$id"].rstrip("#"), Resource.from_contents(schema, DRAFT6)))
    registry = Registry().with_resources(resources)
    exchanges = json.loads(exchanges_json.read_text())
    by_exchange = {exchanges["exchangePrefix"] + e["exchange"]: BASE + "/schemas/queue/" + e["schema"].rstrip("#")
                   for e in exchanges["entries"]}

    def validate(message: PulseMessage) -> None:
        schema = registry.contents(by_exchange[message.exchange])
        jsonschema.Draft6Validator(schema, registry=registry).validate(message.body)
    return validate


@pytest.fixture(scope="module")
def validate():
    return message_validator()


def replay(aggregate):
    """(event, state after it) for the aggregate's pending events, in order."""
    state = None
    for event in aggregate.collect_events():
        state = event.mutate(state)
        yield event, state


def sent(aggregate, mark: int = 0) -> list[PulseMessage]:
    """Messages for the aggregate's pending events after the first `mark`."""
    per_event = [messages_for(event, after) for event, after in replay(aggregate)]
    return [m for messages in per_event[mark:] for m in messages]


def names(messages):
    return [m.exchange.rsplit("/", 1)[1] for m in messages]


def make_task(**fields) -> Task:
    task_id = task_id_of(uuid.uuid4())
    body = {"provisionerId": "prov", "workerType": "wt", "created": format_ms(NOW), "deadline": format_ms(NOW + HOUR),
            "payload": {}, "metadata": {"name": "t", "description": "d", "owner": "o@example.com",
                                        "source": "https://example.com"}, **fields}
    return Task(task_id=task_id, definition=normalize(task_id, body, NOW))


def tagged_task(**fields):
    return make_task(routes=["index.a", "tc.b"], tags={"kind": "test"}, retries=2, **fields)


def test_created_and_scheduled_task_sends_defined_then_pending(validate):
    task = tagged_task()
    task.schedule(NOW)
    messages = sent(task)
    assert names(messages) == ["task-defined", "task-pending"]
    for m in messages:
        validate(m)
        assert m.cc == ["route.index.a", "route.tc.b"]
        assert m.body["version"] == 1 and m.body["task"] == {"tags": {"kind": "test"}}
    defined, pending = messages
    assert defined.body["status"]["state"] == "unscheduled" and defined.body["status"]["runs"] == []
    assert defined.body["status"]["retriesLeft"] == 2
    assert defined.routing_key == f"primary.{task.task_id}._._._.prov.wt.-.{task.task_id}._"
    assert pending.body["runId"] == 0 and pending.body["status"]["state"] == "pending"
    assert pending.routing_key == f"primary.{task.task_id}.0._._.prov.wt.-.{task.task_id}._"


def test_claim_sends_running_without_task_and_reclaim_sends_nothing(validate):
    task = tagged_task()
    task.schedule(NOW)
    mark = len(task.pending_events)
    assert task.claim_work(0, "wg", "wid", NOW, NOW + CLAIM_TIMEOUT)
    task.reclaim(0, NOW + 1000, NOW + 1000 + CLAIM_TIMEOUT)
    running, = sent(task, mark)
    validate(running)
    assert names([running]) == ["task-running"]
    assert "task" not in running.body
    assert running.body["takenUntil"] == format_ms(NOW + CLAIM_TIMEOUT)
    assert (running.body["workerGroup"], running.body["workerId"]) == ("wg", "wid")
    assert running.body["status"]["state"] == "running"
    assert running.routing_key == f"primary.{task.task_id}.0.wg.wid.prov.wt.-.{task.task_id}._"


@pytest.mark.parametrize("outcome", ["completed", "failed"])
def test_report_sends_completed_or_failed_with_worker(validate, outcome):
    task = tagged_task(schedulerId="sched", taskGroupId="fCPMTqF1QUmCO40rBjfYaw")
    task.schedule(NOW)
    task.claim_work(0, "wg", "wid", NOW, NOW + CLAIM_TIMEOUT)
    mark = len(task.pending_events)
    task.report(0, outcome, NOW + 5)
    message, = sent(task, mark)
    validate(message)
    assert names([message]) == ["task-" + outcome]
    assert message.body["status"]["state"] == outcome and message.body["task"] == {"tags": {"kind": "test"}}
    assert message.routing_key == f"primary.{task.task_id}.0.wg.wid.prov.wt.sched.fCPMTqF1QUmCO40rBjfYaw._"


def test_retried_exception_sends_exception_then_pending(validate):
    task = tagged_task()
    task.schedule(NOW)
    task.claim_work(0, "wg", "wid", NOW, NOW + CLAIM_TIMEOUT)
    mark = len(task.pending_events)
    task.report_exception(0, "worker-shutdown", NOW + 5)
    exception, pending = messages = sent(task, mark)
    for m in messages:
        validate(m)
    assert names(messages) == ["task-exception", "task-pending"]
    assert exception.body["runId"] == 0 and exception.body["workerId"] == "wid"
    assert exception.body["status"]["state"] == "exception" and len(exception.body["status"]["runs"]) == 1
    assert pending.body["runId"] == 1 and pending.body["status"]["retriesLeft"] == 1
    assert pending.body["status"]["runs"][1]["reasonCreated"] == "retry"


def test_cancel_before_any_run_sends_one_exception_without_worker(validate):
    task = tagged_task()
    mark = len(task.pending_events)
    task.cancel(NOW)
    message, = sent(task, mark)
    validate(message)
    assert names([message]) == ["task-exception"]
    assert "workerGroup" not in message.body and message.body["runId"] == 0
    assert message.body["status"]["runs"][0]["reasonResolved"] == "canceled"
    assert message.routing_key == f"primary.{task.task_id}.0._._.prov.wt.-.{task.task_id}._"


def test_deadline_of_a_running_task_keeps_the_worker(validate):
    task = tagged_task()
    task.schedule(NOW)
    task.claim_work(0, "wg", "wid", NOW, NOW + CLAIM_TIMEOUT)
    mark = len(task.pending_events)
    assert task.exceed_deadline(NOW + 2 * HOUR)
    message, = sent(task, mark)
    validate(message)
    assert message.body["workerGroup"] == "wg"
    assert message.body["status"]["runs"][0]["reasonResolved"] == "deadline-exceeded"


def test_rerun_sends_pending(validate):
    task = tagged_task()
    task.schedule(NOW)
    task.claim_work(0, "wg", "wid", NOW, NOW + CLAIM_TIMEOUT)
    task.report(0, "failed", NOW + 1)
    mark = len(task.pending_events)
    task.rerun(NOW + 2)
    message, = sent(task, mark)
    validate(message)
    assert names([message]) == ["task-pending"] and message.body["runId"] == 1


def test_group_sealed_and_resolved(validate):
    group = TaskGroup(task_group_id="fCPMTqF1QUmCO40rBjfYaw", scheduler_id="sched", expires=NOW + HOUR)
    group.seal(NOW)
    messages = sent(group)  # Defined sends nothing
    assert names(messages) == ["task-group-sealed"]
    sealed = messages[0]
    validate(sealed)
    assert sealed.body == {"version": 1, "taskGroupId": "fCPMTqF1QUmCO40rBjfYaw", "schedulerId": "sched",
                           "expires": format_ms(NOW + HOUR), "sealed": format_ms(NOW)}
    assert sealed.routing_key == "primary.fCPMTqF1QUmCO40rBjfYaw.sched._" and sealed.cc == []

    # stands in for the event another change adds: only the class name matters
    resolved_event = type("Resolved", (), {"__qualname__": "TaskGroup.Resolved"})()
    resolved, = messages_for(resolved_event, group)
    validate(resolved)
    assert names([resolved]) == ["task-group-resolved"] and resolved.body["sealed"] == format_ms(NOW)


def test_every_exchange_name_is_official():
    exchanges = reference.require("references/queue/v1/exchanges.json")
    assert set(EXCHANGES) - set(LATER_EXCHANGES) == {e["exchange"] for e in json.loads(exchanges.read_text())["entries"]}


def test_internal_event_carries_identity_position_and_attributes():
    task = make_task()
    task.schedule(NOW)
    (defined, after_defined), (added, after_added) = replay(task)
    internal = internal_event_for(added, after_added, position=42)
    assert isinstance(internal, InternalEvent) and internal.routing_key == "Task.RunAdded"
    assert internal.body["id"] == task.task_id and internal.body["version"] == 2
    assert internal.body["type"] == "Task.RunAdded" and internal.body["position"] == 42
    assert internal.body["reason_created"] == "scheduled" and internal.body["retries_left"] == 5
    first = internal_event_for(defined, after_defined, position=41)
    assert first.body["definition"] == task.definition and "originator_topic" not in first.body
    orjson.dumps(first.body)  # JSON-ready as it is


def test_topic_matching():
    assert topic_matches("Task.*", "Task.RunAdded")
    assert not topic_matches("Task.*", "TaskGroup.Sealed")
    assert topic_matches("#", "Task.RunAdded") and topic_matches("Task.#", "Task")
    assert topic_matches("*.Resolved", "TaskGroup.Resolved")
    assert not topic_matches("Task.RunAdded", "Task.RunAdded.x")


def test_task_class_exposes_the_events_the_relay_maps():
    # a renamed event would silently stop its messages
    for name in ("Defined", "RunAdded", "RunClaimed", "RunReclaimed", "RunResolved"):
        assert getattr(Task, name).__qualname__ == f"Task.{name}"
    assert TaskGroup.Sealed.__qualname__ == "TaskGroup.Sealed"


# ---------------------------------------------------------------- artifact-created (§9.3)
def running_task():
    task = tagged_task(schedulerId="sched")
    task.schedule(NOW)
    task.claim_work(0, "wg", "wid", NOW, NOW + CLAIM_TIMEOUT)
    return task


def make_artifact(task, storage_type: str, details: dict, name: str = "public/x"):
    from taskjournal.shared.domain.artifact import Artifact

    return Artifact(task_id=task.task_id, run_id=0, name=name, storage_type=storage_type, content_type="text/plain",
                    expires=NOW + HOUR, details=details, worker_group="wg", worker_id="wid",
                    task_status=task.status(), routes=list(task.definition["routes"]))


@pytest.mark.parametrize("storage_type, details", [
    ("reference", {"url": "https://example.com/x"}), ("link", {"artifact": "public/y"}),
    ("error", {"reason": "file-missing-on-worker", "message": "gone"})])
def test_present_artifacts_send_artifact_created(validate, storage_type, details):
    task = running_task()
    message, = sent(make_artifact(task, storage_type, details))
    validate(message)
    assert names([message]) == ["artifact-created"]
    assert message.body["artifact"] == {"storageType": storage_type, "name": "public/x",
                                        "expires": format_ms(NOW + HOUR), "contentType": "text/plain"}
    assert (message.body["runId"], message.body["workerGroup"], message.body["workerId"]) == (0, "wg", "wid")
    assert message.body["status"] == task.status()
    assert message.cc == ["route.index.a", "route.tc.b"]
    assert message.routing_key == f"primary.{task.task_id}.0.wg.wid.prov.wt.sched.{task.task_id}._"


def test_s3_artifacts_never_send_artifact_created():
    artifact = make_artifact(running_task(), "s3", {"bucket": "public", "prefix": "p"})
    artifact.revise("s3", "text/plain", NOW + HOUR + 1, {"bucket": "public", "prefix": "p"}, {})
    assert sent(artifact) == []


def test_object_artifacts_send_artifact_created_when_finished(validate):
    artifact = make_artifact(running_task(), "object", {"uploadId": "u"})
    assert sent(artifact) == []
    artifact = make_artifact(running_task(), "object", {"uploadId": "u"})
    mark = len(artifact.pending_events)
    artifact.finish("u", lambda: True, artifact.task_status)
    message, = sent(artifact, mark)
    validate(message)
    assert message.body["artifact"]["storageType"] == "object"


def test_a_changed_repeat_sends_artifact_created_again(validate):
    artifact = make_artifact(running_task(), "reference", {"url": "https://a"})
    mark = len(artifact.pending_events)
    artifact.revise("reference", "text/plain", NOW + HOUR, {"url": "https://b"}, artifact.task_status)
    message, = sent(artifact, mark)
    validate(message)


# ---------------------------------------------------------------- priority changes (upstream v95.1)
def test_a_priority_change_sends_task_priority_changed_with_both_priorities():
    task = tagged_task(priority="low", schedulerId="sched")
    task.schedule(NOW)
    assert task.change_priority("highest", NOW)
    assert not task.change_priority("highest", NOW)  # no change, no event
    messages = sent(task, mark=2)
    assert names(messages) == ["task-priority-changed"]
    body = messages[0].body
    assert set(body) == {"version", "status", "oldPriority", "newPriority"}
    assert (body["version"], body["oldPriority"], body["newPriority"]) == (1, "low", "highest")
    assert body["status"]["priority"] == "highest" and body["status"]["state"] == "pending"
    assert messages[0].routing_key == f"primary.{task.task_id}._._._.prov.wt.sched.{task.task_id}._"
    assert messages[0].cc == ["route.index.a", "route.tc.b"]
    assert task.definition["priority"] == "low"  # the definition is kept as submitted


def test_a_group_priority_change_sends_task_group_priority_changed():
    group = TaskGroup(task_group_id="fCPMTqF1QUmCO40rBjfYaw", scheduler_id="sched", expires=NOW + HOUR)
    group.priority_changed("high", ["a", "b"], NOW)
    messages = sent(group)
    assert names(messages) == ["task-group-priority-changed"]
    assert messages[0].body == {"version": 1, "taskGroupId": "fCPMTqF1QUmCO40rBjfYaw", "schedulerId": "sched",
                                "newPriority": "high", "tasksAffected": 2}
    assert messages[0].routing_key == "primary.fCPMTqF1QUmCO40rBjfYaw.sched._"
