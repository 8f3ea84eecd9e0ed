"""Every Queue endpoint the server implements, used as a user would with the
official client, each reply checked against the official v64.2.5 output
schema (behaviour spec §2-§7, edge cases §13)."""

import datetime as dt
import functools
import json
import re
import threading
import time
from pathlib import Path

import pytest
import requests
import taskcluster
from taskcluster.exceptions import TaskclusterRestFailure

from tests.support import reference
from tests.support.server import task_definition

# ------------------------------------------------------------------ official output schemas

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", re.IGNORECASE)
MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@functools.cache
def _validator(schema_dir: Path, name: str):
    from jsonschema import Draft6Validator, FormatChecker
    from referencing import Registry
    from referencing.jsonschema import DRAFT6

    resources = []
    for path in schema_dir.glob("*.json"):
        contents = json.loads(path.read_text())
        resource = DRAFT6.create_resource(contents)
        resources += [(contents["$id"], resource), (contents["$id"].rstrip("#"), resource)]
    registry = Registry().with_resources(resources)

    formats = FormatChecker(formats=())

    @formats.checks("date-time")
    def _date_time(value):
        if not isinstance(value, str):
            return True
        if not RFC3339.match(value):
            return False
        dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        return True

    schema = json.loads(reference.require(name, root=schema_dir).read_text())
    return Draft6Validator(schema, registry=registry, format_checker=formats)


def check(schema_name: str, body):
    """Assert `body` satisfies the official output schema; returns `body`.
    Without the reference files the test fails in CI and is skipped elsewhere
    (tests.support.reference): a reply is never left unchecked."""
    validator = _validator(reference.require("schemas", "queue", "v1"), schema_name)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, f"{schema_name} violated:\n" + "\n".join(
        f"  at {list(e.absolute_path)}: {e.message}" for e in errors[:10])
    return body


def test_the_schema_check_rejects_a_reply_the_schema_forbids():
    with pytest.raises(AssertionError):
        check("task-status-response.json", {"status": {}, "unexpected": 1})


def test_the_schema_check_needs_the_schema_it_names(monkeypatch):
    reference.require("schemas", "queue", "v1")
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="no-such-response.json does not exist"):
        check("no-such-response.json", {})


# ------------------------------------------------------------------ helpers

def slug() -> str:
    return taskcluster.slugId()


def ms_z(text: str) -> str:
    """An RFC 3339 time re-serialised the way the queue stores it (ms, Z)."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso_in(seconds: float) -> str:
    moment = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def rest_error(fn, *args, **kwargs) -> TaskclusterRestFailure:
    with pytest.raises(TaskclusterRestFailure) as info:
        fn(*args, **kwargs)
    return info.value


def expect_error(status: int, code: str, fn, *args, **kwargs) -> TaskclusterRestFailure:
    err = rest_error(fn, *args, **kwargs)
    assert (err.status_code, err.body.get("code")) == (status, code), err.body
    return err


def worker(group: str = "wg", worker_id: str = "w1", tasks: int = 1) -> dict:
    return {"workerGroup": group, "workerId": worker_id, "tasks": tasks}


def claim_one(queue, task_queue_id: str, worker_id: str = "w1") -> dict:
    claims = queue.claimWork(task_queue_id, worker(worker_id=worker_id))["tasks"]
    assert len(claims) == 1, claims
    return claims[0]


def wait_for(fetch, done, timeout: float, interval: float = 0.2):
    """Poll `fetch()` until `done(value)` or the timeout; the last value."""
    give_up = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() >= give_up:
            return value
        time.sleep(interval)


def create(queue, task_queue_id: str, **overrides) -> str:
    task_id = slug()
    queue.createTask(task_id, task_definition(task_queue_id, **overrides))
    return task_id


def runs_of(queue, task_id: str) -> list:
    return queue.status(task_id)["status"]["runs"]


# ------------------------------------------------------------------ monitoring (§7.1)

def test_monitoring_endpoints_answer_anonymous_callers(server):
    anonymous = server.anonymous_queue()
    ping = anonymous.ping()
    assert ping["alive"] is True
    assert isinstance(ping["uptime"], (int, float)) and ping["uptime"] >= 0
    assert anonymous.lbheartbeat() == {}
    assert anonymous.heartbeat() == {}
    version = anonymous.version()
    assert {"version", "commit", "source", "build"} <= set(version)
    reply = requests.get(server.root_url + "/__lbheartbeat__", timeout=5)
    assert (reply.status_code, reply.json()) == (200, {})
    # the root heartbeat names each dependency (docs/operations.md, "Draining and health checks")
    reply = requests.get(server.root_url + "/__heartbeat__", timeout=5)
    assert (reply.status_code, reply.json()) == (200, {"status": "ok", "checks": {"store": "ok"}, "details": {}})
    reply = requests.get(server.root_url + "/__version__", timeout=5)
    assert reply.status_code == 200 and reply.json() == version


# ------------------------------------------------------------------ createTask, task, status (§2.1, §7.4-§7.13)

def test_create_task_applies_the_documented_defaults(queue, unique_queue):
    task_id = slug()
    definition = task_definition(unique_queue)
    status = check("task-status-response.json", queue.createTask(task_id, definition))["status"]

    provisioner, worker_type = unique_queue.split("/")
    deadline = ms_z(definition["deadline"])
    expires = ms_z(parse(deadline).replace(year=parse(deadline).year + 1).isoformat())
    assert {k: v for k, v in status.items() if k != "runs"} == {
        "taskId": task_id, "provisionerId": provisioner, "workerType": worker_type, "taskQueueId": unique_queue,
        "schedulerId": "-", "projectId": "none", "taskGroupId": task_id, "deadline": deadline,
        "expires": expires, "retriesLeft": 5, "state": "pending"}
    [run] = status["runs"]
    assert set(run) == {"runId", "state", "reasonCreated", "scheduled"}
    assert (run["runId"], run["state"], run["reasonCreated"]) == (0, "pending", "scheduled")

    stored = check("task.json", queue.task(task_id))
    assert stored == {
        "provisionerId": provisioner, "workerType": worker_type, "taskQueueId": unique_queue, "schedulerId": "-",
        "projectId": "none", "taskGroupId": task_id, "dependencies": [], "requires": "all-completed",
        "routes": [], "priority": "lowest", "retries": 5, "created": ms_z(definition["created"]),
        "deadline": deadline, "expires": expires, "scopes": [], "payload": definition["payload"],
        "metadata": definition["metadata"], "tags": {}, "extra": {}}
    assert check("task-status-response.json", queue.status(task_id))["status"] == status


def test_create_task_stores_a_full_definition_as_submitted(queue, unique_queue):
    task_id, group_id = slug(), slug()
    provisioner, worker_type = unique_queue.split("/")
    definition = task_definition(
        provisionerId=provisioner, workerType=worker_type, schedulerId="e2e-sched", projectId="e2e/project",
        taskGroupId=group_id, routes=["index.e2e.a", "index.e2e.b"], priority="high", retries=2,
        scopes=["secrets:get:e2e", "queue:get-artifact:private/*"], tags={"kind": "e2e"},
        extra={"nested": {"list": [1, 2]}}, expires=iso_in(2 * 86400), payload={"command": ["echo", "hi"]})
    definition.pop("taskQueueId")
    status = check("task-status-response.json", queue.createTask(task_id, definition))["status"]
    assert (status["schedulerId"], status["projectId"], status["taskGroupId"], status["retriesLeft"]) == (
        "e2e-sched", "e2e/project", group_id, 2)
    stored = check("task.json", queue.task(task_id))
    expected = {**definition, "taskQueueId": unique_queue, "dependencies": [], "requires": "all-completed",
                "created": ms_z(definition["created"]), "deadline": ms_z(definition["deadline"]),
                "expires": ms_z(definition["expires"])}
    assert stored == expected


def test_create_task_keeps_milliseconds_of_microsecond_timestamps(queue, unique_queue):
    task_id = slug()
    created = dt.datetime.now(dt.timezone.utc).replace(microsecond=234324).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    deadline = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).replace(microsecond=987654)
    definition = task_definition(unique_queue, created=created, deadline=deadline.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    queue.createTask(task_id, definition)
    stored = queue.task(task_id)
    assert stored["created"].endswith(".234Z") and stored["deadline"].endswith(".987Z")
    assert queue.createTask(task_id, definition)["status"]["taskId"] == task_id  # same strings: idempotent


def test_create_task_stores_priority_normal_as_lowest(queue, unique_queue):
    task_id = create(queue, unique_queue, priority="normal")
    assert queue.task(task_id)["priority"] == "lowest"


def test_task_queue_id_and_provisioner_worker_type_forms_name_the_same_queue(queue, unique_queue):
    provisioner, worker_type = unique_queue.split("/")
    by_queue = create(queue, unique_queue)
    split = task_definition(provisionerId=provisioner, workerType=worker_type)
    split.pop("taskQueueId")
    by_parts = slug()
    queue.createTask(by_parts, split)
    both = slug()
    queue.createTask(both, task_definition(unique_queue, provisionerId=provisioner, workerType=worker_type))
    for task_id in (by_queue, by_parts, both):
        stored = queue.task(task_id)
        assert (stored["taskQueueId"], stored["provisionerId"], stored["workerType"]) == (
            unique_queue, provisioner, worker_type)


def test_create_task_twice_with_the_same_definition_returns_the_same_reply(queue, unique_queue):
    task_id = slug()
    definition = task_definition(unique_queue)
    first = queue.createTask(task_id, definition)
    second = check("task-status-response.json", queue.createTask(task_id, definition))
    assert second == first
    assert queue.status(task_id) == first
    assert len(runs_of(queue, task_id)) == 1


def test_create_task_repeat_compares_definitions_after_defaults_and_normalisation(queue, unique_queue):
    task_id = slug()
    definition = task_definition(unique_queue, priority="normal")
    first = queue.createTask(task_id, definition)
    deadline = parse(ms_z(definition["deadline"]))
    explicit = {**definition, "priority": "lowest", "retries": 5, "schedulerId": "-", "projectId": "none",
                "taskGroupId": task_id, "routes": [], "scopes": [], "tags": {}, "extra": {},
                "dependencies": [], "requires": "all-completed",
                "created": ms_z(definition["created"]).replace("Z", "000Z"),
                "expires": deadline.replace(year=deadline.year + 1).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}
    assert queue.createTask(task_id, explicit) == first


def test_create_task_repeat_returns_the_live_status(queue, unique_queue):
    task_id = slug()
    definition = task_definition(unique_queue)
    queue.createTask(task_id, definition)
    claim_one(queue, unique_queue)
    repeat = queue.createTask(task_id, definition)
    assert repeat["status"]["state"] == "running"
    assert repeat == queue.status(task_id)


@pytest.mark.parametrize("change", [
    {"taskQueueId": "e2e-prov/other-queue"},
    {"payload": {"command": ["false"]}},
    {"retries": 1},
    {"tags": {"a": "b"}},
])
def test_create_task_with_a_different_definition_for_a_used_task_id_conflicts(queue, unique_queue, change):
    task_id = slug()
    definition = task_definition(unique_queue)
    original = queue.createTask(task_id, definition)
    err = expect_error(409, "RequestConflict", queue.createTask, task_id, {**definition, **change})
    assert f"taskId `{task_id}` already used by another task" in err.body["message"]
    assert queue.status(task_id) == original
    assert queue.task(task_id)["taskQueueId"] == unique_queue


def test_create_task_in_a_group_of_another_scheduler_conflicts(queue, unique_queue):
    group_id, first, second = slug(), slug(), slug()
    queue.createTask(first, task_definition(unique_queue, taskGroupId=group_id, schedulerId="sched-one"))
    err = expect_error(409, "RequestConflict", queue.createTask, second,
                       task_definition(unique_queue, taskGroupId=group_id, schedulerId="sched-two"))
    assert f"Task group `{group_id}` contains tasks with a schedulerId other than" in err.body["message"]
    expect_error(404, "ResourceNotFound", queue.task, second)
    assert queue.getTaskGroup(group_id)["schedulerId"] == "sched-one"


def test_create_task_in_a_sealed_group_conflicts_even_for_a_repeat(queue, unique_queue):
    group_id, member, late = slug(), slug(), slug()
    definition = task_definition(unique_queue, taskGroupId=group_id)
    queue.createTask(member, definition)
    queue.sealTaskGroup(group_id)
    err = expect_error(409, "RequestConflict", queue.createTask, late,
                       task_definition(unique_queue, taskGroupId=group_id))
    assert "is sealed" in err.body["message"]
    expect_error(409, "RequestConflict", queue.createTask, member, definition)
    expect_error(404, "ResourceNotFound", queue.task, late)
    # existing members still work normally
    claim = claim_one(queue, unique_queue)
    assert claim["status"]["taskId"] == member


def test_task_group_expiry_grows_with_its_members_even_when_creation_fails(queue, unique_queue):
    group_id, first, second = slug(), slug(), slug()
    queue.createTask(first, task_definition(unique_queue, taskGroupId=group_id, expires=iso_in(2 * 86400)))
    initial = parse(queue.getTaskGroup(group_id)["expires"])
    later = iso_in(3 * 86400)
    queue.createTask(second, task_definition(unique_queue, taskGroupId=group_id, expires=later))
    assert parse(queue.getTaskGroup(group_id)["expires"]) == parse(later) + dt.timedelta(hours=1)
    assert parse(queue.getTaskGroup(group_id)["expires"]) > initial
    even_later = iso_in(4 * 86400)
    expect_error(409, "RequestConflict", queue.createTask, first,
                 task_definition(unique_queue, taskGroupId=group_id, expires=even_later))
    assert parse(queue.getTaskGroup(group_id)["expires"]) == parse(even_later) + dt.timedelta(hours=1)
    queue.createTask(slug(), task_definition(unique_queue, taskGroupId=group_id, expires=iso_in(2 * 86400)))
    assert parse(queue.getTaskGroup(group_id)["expires"]) == parse(even_later) + dt.timedelta(hours=1)  # never shrinks


def test_task_and_status_of_an_unknown_task_are_404(queue):
    task_id = slug()
    err = expect_error(404, "ResourceNotFound", queue.task, task_id)
    assert f"`{task_id}` does not correspond to a task that exists" in err.body["message"]
    expect_error(404, "ResourceNotFound", queue.status, task_id)


def test_emitted_timestamps_use_millisecond_utc_form(queue, unique_queue):
    task_id = create(queue, unique_queue)
    claim_one(queue, unique_queue)
    queue.reclaimTask(task_id, "0")
    status = queue.reportCompleted(task_id, "0")["status"]
    run = status["runs"][0]
    for value in (status["deadline"], status["expires"], run["scheduled"], run["started"], run["takenUntil"],
                  run["resolved"]):
        assert MS_Z.match(value), value
    stored = queue.task(task_id)
    for value in (stored["created"], stored["deadline"], stored["expires"]):
        assert MS_Z.match(value), value


# ------------------------------------------------------------------ dependencies (§5)

def test_self_dependent_task_stays_unscheduled_until_schedule_task(queue, unique_queue):
    task_id = slug()
    status = queue.createTask(task_id, task_definition(unique_queue, dependencies=[task_id]))["status"]
    assert (status["state"], status["runs"]) == ("unscheduled", [])
    assert queue.pendingTasks(unique_queue)["pendingTasks"] == 0

    scheduled = check("task-status-response.json", queue.scheduleTask(task_id))["status"]
    assert scheduled["state"] == "pending"
    [run] = scheduled["runs"]
    assert (run["runId"], run["state"], run["reasonCreated"]) == (0, "pending", "scheduled")
    again = queue.scheduleTask(task_id)  # already has a run: no change
    assert again["status"] == scheduled
    assert claim_one(queue, unique_queue)["status"]["taskId"] == task_id


def test_task_whose_dependency_already_completed_is_pending_at_once(queue, unique_queue):
    other_queue = unique_queue + "-dep"
    required = create(queue, other_queue)
    claim_one(queue, other_queue)
    queue.reportCompleted(required, "0")
    dependent = slug()
    status = queue.createTask(dependent, task_definition(unique_queue, dependencies=[required]))["status"]
    assert status["state"] == "pending"


def test_dependency_on_a_missing_task_is_rejected_and_nothing_is_stored(queue, unique_queue):
    task_id, missing = slug(), slug()
    err = expect_error(400, "InputError", queue.createTask, task_id,
                       task_definition(unique_queue, dependencies=[missing]))
    assert missing in err.body["message"]
    expect_error(404, "ResourceNotFound", queue.task, task_id)


def test_dependency_expiring_before_the_deadline_is_rejected(queue, unique_queue):
    short_lived = create(queue, unique_queue, expires=iso_in(2 * 3600))
    task_id = slug()
    err = expect_error(400, "InputError", queue.createTask, task_id,
                       task_definition(unique_queue, deadline=iso_in(3 * 3600), dependencies=[short_lived]))
    assert short_lived in err.body["message"]
    expect_error(404, "ResourceNotFound", queue.task, task_id)
    ok = slug()
    queue.createTask(ok, task_definition(unique_queue, deadline=iso_in(3600), dependencies=[short_lived]))
    assert queue.status(ok)["status"]["state"] == "unscheduled"


def test_task_group_of_a_create_that_failed_its_dependency_check_still_exists(queue, unique_queue):
    """§7.13: the group is created in step 6; a failed dependency check (step 9) deletes only the task."""
    group_id = slug()
    expect_error(400, "InputError", queue.createTask, slug(),
                 task_definition(unique_queue, taskGroupId=group_id, schedulerId="first-sched", dependencies=[slug()]))
    assert queue.getTaskGroup(group_id)["schedulerId"] == "first-sched"
    expect_error(409, "RequestConflict", queue.createTask, slug(),
                 task_definition(unique_queue, taskGroupId=group_id, schedulerId="other-sched"))


def test_dependent_task_becomes_pending_after_its_dependency_completes(queue, unique_queue):
    other_queue = unique_queue + "-dep"
    required = create(queue, other_queue)
    dependent = slug()
    queue.createTask(dependent, task_definition(unique_queue, dependencies=[required]))
    assert queue.status(dependent)["status"]["state"] == "unscheduled"
    claim_one(queue, other_queue)
    queue.reportCompleted(required, "0")
    status = wait_for(lambda: queue.status(dependent)["status"], lambda s: s["state"] == "pending", 3)
    assert status["state"] == "pending"
    assert status["runs"][0]["reasonCreated"] == "scheduled"


def test_dependents_are_scheduled_once_all_their_dependencies_completed(queue, unique_queue):
    other = unique_queue + "-dep"
    first, second = create(queue, other), create(queue, other)
    both = create(queue, unique_queue, dependencies=[first, second])
    only_first = create(queue, unique_queue, dependencies=[first])
    itself = slug()
    queue.createTask(itself, task_definition(unique_queue, dependencies=[first, itself]))
    for task_id in (both, only_first, itself):
        assert queue.status(task_id)["status"]["state"] == "unscheduled"
    queue.claimTask(first, "0", {"workerGroup": "wg", "workerId": "w1"})
    queue.reportCompleted(first, "0")
    assert wait_for(lambda: queue.status(only_first)["status"]["state"], lambda s: s == "pending", 3) == "pending"
    assert queue.status(both)["status"]["state"] == "unscheduled"
    assert queue.status(itself)["status"]["state"] == "unscheduled"  # never satisfies itself
    queue.claimTask(second, "0", {"workerGroup": "wg", "workerId": "w1"})
    queue.reportCompleted(second, "0")
    assert wait_for(lambda: queue.status(both)["status"]["state"], lambda s: s == "pending", 3) == "pending"
    [run] = queue.status(both)["status"]["runs"]
    assert run["reasonCreated"] == "scheduled"
    assert queue.status(itself)["status"]["state"] == "unscheduled"


def test_failed_dependency_schedules_only_all_resolved_dependents(queue, unique_queue):
    other = unique_queue + "-dep"
    required = create(queue, other)
    resolved_id, completed_id = sorted([slug(), slug()])  # all-resolved first, so Quirk Q1 cannot interfere
    queue.createTask(resolved_id, task_definition(unique_queue, dependencies=[required], requires="all-resolved"))
    queue.createTask(completed_id, task_definition(unique_queue, dependencies=[required]))
    queue.claimTask(required, "0", {"workerGroup": "wg", "workerId": "w1"})
    queue.reportFailed(required, "0")
    assert wait_for(lambda: queue.status(resolved_id)["status"]["state"], lambda s: s == "pending", 3) == "pending"
    assert queue.status(completed_id)["status"]["state"] == "unscheduled"


# ------------------------------------------------------------------ rerunTask (§7.15, §3.4-§3.5)

def test_rerun_after_completion_adds_run_1_pending_rerun(queue, unique_queue):
    task_id = create(queue, unique_queue)
    claim_one(queue, unique_queue)
    queue.reportCompleted(task_id, "0")
    status = check("task-status-response.json", queue.rerunTask(task_id))["status"]
    assert status["state"] == "pending"
    assert [(r["runId"], r["state"], r["reasonCreated"]) for r in status["runs"]] == [
        (0, "completed", "scheduled"), (1, "pending", "rerun")]
    assert status["retriesLeft"] == 5
    assert queue.rerunTask(task_id)["status"] == status  # pending: no change
    claim = claim_one(queue, unique_queue)
    assert (claim["status"]["taskId"], claim["runId"]) == (task_id, 1)
    assert queue.rerunTask(task_id)["status"]["runs"] == queue.status(task_id)["status"]["runs"]  # running: no change


def test_rerun_of_an_unscheduled_task_creates_run_0_rerun(queue, unique_queue):
    task_id = slug()
    queue.createTask(task_id, task_definition(unique_queue, dependencies=[task_id]))
    status = queue.rerunTask(task_id)["status"]
    assert [(r["runId"], r["state"], r["reasonCreated"]) for r in status["runs"]] == [(0, "pending", "rerun")]


def test_rerun_is_refused_after_fifty_runs_and_resets_retries_left(queue, unique_queue):
    task_id = create(queue, unique_queue, retries=5)
    for run_id in range(50):
        queue.claimTask(task_id, str(run_id), {"workerGroup": "wg", "workerId": "w1"})
        queue.reportFailed(task_id, str(run_id))
        if run_id < 49:
            status = queue.rerunTask(task_id)["status"]
            assert status["retriesLeft"] == min(5, 49 - (run_id + 1)), run_id
    err = expect_error(409, "RequestConflict", queue.rerunTask, task_id)
    assert "Maximum number of runs reached (50)" in err.body["message"]
    assert len(runs_of(queue, task_id)) == 50


# ------------------------------------------------------------------ cancelTask (§7.16)

def test_cancel_pending_task_resolves_run_0_canceled(queue, unique_queue):
    task_id = create(queue, unique_queue)
    status = check("task-status-response.json", queue.cancelTask(task_id))["status"]
    assert status["state"] == "exception"
    [run] = status["runs"]
    assert (run["state"], run["reasonCreated"], run["reasonResolved"]) == ("exception", "scheduled", "canceled")
    assert "workerId" not in run and "resolved" in run
    assert queue.cancelTask(task_id)["status"] == status  # idempotent
    later = create(queue, unique_queue)  # (pendingTasks may still count the cancelled one: Quirk Q5)
    assert [c["status"]["taskId"] for c in queue.claimWork(unique_queue, worker(tasks=4))["tasks"]] == [later]


def test_cancel_unscheduled_task_synthesises_an_exception_run(queue, unique_queue):
    task_id = slug()
    queue.createTask(task_id, task_definition(unique_queue, dependencies=[task_id]))
    status = queue.cancelTask(task_id)["status"]
    [run] = status["runs"]
    assert (run["state"], run["reasonCreated"], run["reasonResolved"]) == ("exception", "exception", "canceled")
    assert run["scheduled"] == run["resolved"]
    assert queue.cancelTask(task_id)["status"] == status


def test_cancel_running_task_keeps_the_worker_fields(queue, unique_queue):
    task_id = create(queue, unique_queue)
    claim = claim_one(queue, unique_queue)
    status = queue.cancelTask(task_id)["status"]
    [run] = status["runs"]
    assert (run["state"], run["reasonResolved"]) == ("exception", "canceled")
    assert (run["workerGroup"], run["workerId"], run["takenUntil"]) == ("wg", "w1", claim["takenUntil"])
    expect_error(409, "RequestConflict", queue.reportCompleted, task_id, "0")
    expect_error(409, "RequestConflict", queue.reclaimTask, task_id, "0")


def test_cancel_of_a_completed_task_changes_nothing(queue, unique_queue):
    task_id = create(queue, unique_queue)
    claim_one(queue, unique_queue)
    completed = queue.reportCompleted(task_id, "0")
    assert queue.cancelTask(task_id) == completed


@pytest.mark.parametrize("method", ["scheduleTask", "rerunTask", "cancelTask"])
def test_task_commands_on_an_unknown_task_are_404(queue, method):
    expect_error(404, "ResourceNotFound", getattr(queue, method), slug())


# ------------------------------------------------------------------ claimWork (§4)

def test_claim_work_returns_a_complete_claim(server, queue, unique_queue):
    task_id = create(queue, unique_queue, scopes=["secrets:get:e2e"])
    before = dt.datetime.now(dt.timezone.utc)
    reply = check("claim-work-response.json", queue.claimWork(unique_queue, {"workerGroup": "wg", "workerId": "w1"}))
    [claim] = reply["tasks"]
    assert (claim["runId"], claim["workerGroup"], claim["workerId"]) == (0, "wg", "w1")
    assert claim["task"] == queue.task(task_id)
    assert claim["status"] == queue.status(task_id)["status"]
    assert claim["status"]["state"] == "running"
    taken_until = parse(claim["takenUntil"])
    assert before + dt.timedelta(seconds=2) <= taken_until <= before + dt.timedelta(seconds=5)
    run = claim["status"]["runs"][0]
    assert (run["workerGroup"], run["workerId"], parse(run["takenUntil"])) == ("wg", "w1", taken_until)

    credentials = claim["credentials"]
    assert credentials["clientId"].startswith(f"task-client/{task_id}/0/on/wg/w1/until/")
    certificate = json.loads(credentials["certificate"])
    assert certificate["scopes"] == [f"queue:reclaim-task:{task_id}/0", f"queue:resolve-task:{task_id}/0",
                                     f"queue:create-artifact:{task_id}/0", "secrets:get:e2e"]
    assert certificate["expiry"] == int(taken_until.timestamp() * 1000)
    run_queue = server.queue(credentials)
    reclaimed = check("task-reclaim-response.json", run_queue.reclaimTask(task_id, "0"))
    assert parse(reclaimed["takenUntil"]) >= taken_until
    server.queue(reclaimed["credentials"]).reportCompleted(task_id, "0")
    assert queue.status(task_id)["status"]["state"] == "completed"


def test_claim_work_prefers_higher_priority_and_keeps_fifo_within_a_priority(queue, unique_queue):
    low = create(queue, unique_queue, priority="lowest")
    high = create(queue, unique_queue, priority="high")
    assert claim_one(queue, unique_queue)["status"]["taskId"] == high
    assert claim_one(queue, unique_queue)["status"]["taskId"] == low

    order = []
    for priority in ("lowest", "high", "lowest", "highest", "high"):
        order.append(create(queue, unique_queue, priority=priority))
        time.sleep(0.005)  # distinct insertion times
    claims = queue.claimWork(unique_queue, worker(tasks=32))["tasks"]
    assert [c["status"]["taskId"] for c in claims] == [order[3], order[1], order[4], order[0], order[2]]


def test_claim_work_claims_at_most_the_requested_number_and_at_most_32(queue, unique_queue):
    created = [create(queue, unique_queue) for _ in range(34)]
    three = queue.claimWork(unique_queue, worker(tasks=3))["tasks"]
    assert len(three) == 3
    many = check("claim-work-response.json", queue.claimWork(unique_queue, worker(worker_id="w2", tasks=32)))["tasks"]
    assert len(many) == 31
    assert sorted(c["status"]["taskId"] for c in three + many) == sorted(created)
    assert all(c["runId"] == 0 for c in many)
    err = expect_error(400, "InputValidationError", queue.claimWork, unique_queue, worker(tasks=33))
    assert "claim-work-request" in err.body["message"]


def test_claim_work_on_an_empty_queue_waits_for_the_long_poll_then_returns_nothing(queue, unique_queue):
    started = time.monotonic()
    reply = check("claim-work-response.json", queue.claimWork(unique_queue, worker()))
    elapsed = time.monotonic() - started
    assert reply == {"tasks": []}
    assert 1.7 <= elapsed < 6, elapsed


def test_claim_work_wakes_up_when_work_arrives_during_the_long_poll(queue, server, unique_queue):
    result = {}

    def poll():
        started = time.monotonic()
        result["claims"] = server.queue().claimWork(unique_queue, worker())["tasks"]
        result["elapsed"] = time.monotonic() - started

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.4)
    task_id = create(queue, unique_queue)
    poller.join(10)
    assert [c["status"]["taskId"] for c in result["claims"]] == [task_id]
    assert result["elapsed"] < 1.9, result["elapsed"]


def test_the_same_task_created_twice_is_claimed_once(queue, unique_queue):
    task_id = slug()
    definition = task_definition(unique_queue)
    queue.createTask(task_id, definition)
    queue.createTask(task_id, definition)
    claims = queue.claimWork(unique_queue, worker(tasks=2))["tasks"]
    assert [(c["status"]["taskId"], c["runId"]) for c in claims] == [(task_id, 0)]


# ------------------------------------------------------------------ claimTask / reclaimTask (§7.18, §7.19)

def test_claim_task_twice_by_the_same_worker_succeeds_and_another_worker_conflicts(queue, unique_queue):
    task_id = create(queue, unique_queue)
    first = check("task-claim-response.json", queue.claimTask(task_id, "0", {"workerGroup": "wg", "workerId": "w1"}))
    assert (first["runId"], first["workerGroup"], first["workerId"]) == (0, "wg", "w1")
    assert first["status"]["state"] == "running"
    assert first["task"] == queue.task(task_id)
    second = check("task-claim-response.json", queue.claimTask(task_id, "0", {"workerGroup": "wg", "workerId": "w1"}))
    assert parse(second["takenUntil"]) == parse(first["takenUntil"])
    assert second["status"] == queue.status(task_id)["status"]
    err = expect_error(409, "RequestConflict", queue.claimTask, task_id, "0", {"workerGroup": "wg", "workerId": "w2"})
    assert "already claimed by another worker" in err.body["message"]
    expect_error(409, "RequestConflict", queue.claimTask, task_id, "0", {"workerGroup": "other", "workerId": "w1"})


def test_claim_task_of_a_run_claimed_through_claim_work_conflicts_even_for_that_worker(queue, unique_queue):
    """§7.18: the idempotent repeat is only for runs claimed through claimTask."""
    task_id = create(queue, unique_queue)
    claim_one(queue, unique_queue, worker_id="w1")
    expect_error(409, "RequestConflict", queue.claimTask, task_id, "0", {"workerGroup": "wg", "workerId": "w1"})


def test_claim_task_of_a_missing_run_or_task_is_404(queue, unique_queue):
    task_id = create(queue, unique_queue)
    err = expect_error(404, "ResourceNotFound", queue.claimTask, task_id, "1", {"workerGroup": "wg", "workerId": "w1"})
    assert "Run 1 not found" in err.body["message"]
    expect_error(404, "ResourceNotFound", queue.claimTask, slug(), "0", {"workerGroup": "wg", "workerId": "w1"})


def test_claim_task_of_a_resolved_run_conflicts(queue, unique_queue):
    task_id = create(queue, unique_queue)
    queue.claimTask(task_id, "0", {"workerGroup": "wg", "workerId": "w1"})
    queue.reportCompleted(task_id, "0")
    expect_error(409, "RequestConflict", queue.claimTask, task_id, "0", {"workerGroup": "wg", "workerId": "w1"})


def test_reclaim_extends_taken_until_and_fails_once_resolved(queue, unique_queue):
    task_id = create(queue, unique_queue)
    claim = claim_one(queue, unique_queue)
    time.sleep(0.05)
    reclaimed = check("task-reclaim-response.json", queue.reclaimTask(task_id, "0"))
    assert (reclaimed["runId"], reclaimed["workerGroup"], reclaimed["workerId"]) == (0, "wg", "w1")
    assert parse(reclaimed["takenUntil"]) > parse(claim["takenUntil"])
    assert MS_Z.match(reclaimed["takenUntil"])
    assert reclaimed["status"]["runs"][0]["takenUntil"] == reclaimed["takenUntil"]
    assert reclaimed["credentials"]["clientId"].startswith(f"task-client/{task_id}/0/on/wg/w1/until/")
    queue.reportCompleted(task_id, "0")
    err = expect_error(409, "RequestConflict", queue.reclaimTask, task_id, "0")
    assert "is resolved or not running" in err.body["message"]
    expect_error(404, "ResourceNotFound", queue.reclaimTask, task_id, "1")
    expect_error(404, "ResourceNotFound", queue.reclaimTask, slug(), "0")


def test_reclaim_of_a_pending_run_conflicts(queue, unique_queue):
    task_id = create(queue, unique_queue)
    expect_error(409, "RequestConflict", queue.reclaimTask, task_id, "0")


# ------------------------------------------------------------------ reportCompleted / reportFailed (§7.20, §7.21)

def test_report_completed_twice_succeeds_both_times(queue, unique_queue):
    task_id = create(queue, unique_queue)
    claim_one(queue, unique_queue)
    first = check("task-status-response.json", queue.reportCompleted(task_id, "0"))
    run = first["status"]["runs"][0]
    assert (first["status"]["state"], run["state"], run["reasonResolved"]) == ("completed", "completed", "completed")
    assert (run["workerGroup"], run["workerId"]) == ("wg", "w1") and "resolved" in run
    assert queue.reportCompleted(task_id, "0") == first
    err = expect_error(409, "RequestConflict", queue.reportFailed, task_id, "0")
    assert "is not running or failed" in err.body["message"]
    expect_error(409, "RequestConflict", queue.reportException, task_id, "0", {"reason": "internal-error"})
    queue.rerunTask(task_id)
    err = expect_error(409, "RequestConflict", queue.reportCompleted, task_id, "0")  # no longer the last run
    assert "is resolved or not running" in err.body["message"]


def test_report_failed_twice_succeeds_both_times(queue, unique_queue):
    task_id = create(queue, unique_queue)
    claim_one(queue, unique_queue)
    first = check("task-status-response.json", queue.reportFailed(task_id, "0"))
    assert first["status"]["state"] == "failed"
    assert first["status"]["runs"][0]["reasonResolved"] == "failed"
    assert queue.reportFailed(task_id, "0") == first
    expect_error(409, "RequestConflict", queue.reportCompleted, task_id, "0")


def test_report_on_a_pending_run_or_a_missing_run_fails(queue, unique_queue):
    task_id = create(queue, unique_queue)
    err = expect_error(409, "RequestConflict", queue.reportCompleted, task_id, "0")
    assert "is not running or completed" in err.body["message"]
    expect_error(409, "RequestConflict", queue.reportFailed, task_id, "0")
    expect_error(409, "RequestConflict", queue.reportException, task_id, "0", {"reason": "internal-error"})
    expect_error(404, "ResourceNotFound", queue.reportCompleted, task_id, "3")
    expect_error(404, "ResourceNotFound", queue.reportCompleted, slug(), "0")
    assert queue.status(task_id)["status"]["state"] == "pending"


# ------------------------------------------------------------------ reportException (§7.22, §3.3)

@pytest.mark.parametrize("reason, created_as", [("worker-shutdown", "retry"), ("intermittent-task", "task-retry")])
def test_retried_exception_adds_a_pending_run_and_spends_a_retry(queue, unique_queue, reason, created_as):
    task_id = create(queue, unique_queue, retries=1)
    claim_one(queue, unique_queue)
    status = check("task-status-response.json", queue.reportException(task_id, "0", {"reason": reason}))["status"]
    assert status["state"] == "pending" and status["retriesLeft"] == 0
    assert [(r["runId"], r["state"], r["reasonCreated"], r.get("reasonResolved")) for r in status["runs"]] == [
        (0, "exception", "scheduled", reason), (1, "pending", created_as, None)]
    assert queue.reportException(task_id, "0", {"reason": reason})["status"] == status  # repeat: same reply

    claim = claim_one(queue, unique_queue)
    assert (claim["status"]["taskId"], claim["runId"]) == (task_id, 1)
    final = queue.reportException(task_id, "1", {"reason": reason})["status"]  # no retries left
    assert final["state"] == "exception" and final["retriesLeft"] == 0
    assert [(r["state"], r.get("reasonResolved")) for r in final["runs"]] == [("exception", reason)] * 2


@pytest.mark.parametrize("reason", ["malformed-payload", "resource-unavailable", "internal-error"])
def test_non_retried_exception_resolves_the_task(queue, unique_queue, reason):
    task_id = create(queue, unique_queue)
    claim_one(queue, unique_queue)
    status = check("task-status-response.json", queue.reportException(task_id, "0", {"reason": reason}))["status"]
    assert status["state"] == "exception" and status["retriesLeft"] == 5
    [run] = status["runs"]
    assert (run["state"], run["reasonResolved"]) == ("exception", reason)
    assert queue.reportException(task_id, "0", {"reason": reason})["status"] == status
    other = "internal-error" if reason != "internal-error" else "malformed-payload"
    err = expect_error(409, "RequestConflict", queue.reportException, task_id, "0", {"reason": other})
    assert "is resolved or not running" in err.body["message"]
    assert queue.status(task_id)["status"]["runs"][0]["reasonResolved"] == reason


def test_worker_shutdown_without_retries_left_is_final(queue, unique_queue):
    task_id = create(queue, unique_queue, retries=0)
    claim_one(queue, unique_queue)
    status = queue.reportException(task_id, "0", {"reason": "worker-shutdown"})["status"]
    assert status["state"] == "exception" and len(status["runs"]) == 1


# ------------------------------------------------------------------ tasks / statuses (§7.5, §7.6)

def test_tasks_and_statuses_return_known_ids_and_omit_unknown_ones(queue, unique_queue):
    known = [create(queue, unique_queue) for _ in range(3)]
    unknown = slug()
    ids = [known[0], unknown, known[1], known[2], known[0], "not-a-slugid"]
    tasks = check("tasks-response.json", queue.tasks({"taskIds": ids}))
    assert "continuationToken" not in tasks
    assert sorted(t["taskId"] for t in tasks["tasks"]) == sorted(known)
    for entry in tasks["tasks"]:
        assert entry["task"] == queue.task(entry["taskId"])
    statuses = check("tasks-statuses-response.json", queue.statuses({"taskIds": ids}))
    assert sorted(s["taskId"] for s in statuses["statuses"]) == sorted(known)
    for entry in statuses["statuses"]:
        assert entry["status"] == queue.status(entry["taskId"])["status"]
    assert queue.tasks({"taskIds": []}) == {"tasks": []}
    assert queue.statuses({"taskIds": [unknown]}) == {"statuses": []}


def test_tasks_and_statuses_page_with_limit(queue, unique_queue):
    known = [create(queue, unique_queue) for _ in range(3)]
    for method, key, schema in ((queue.tasks, "tasks", "tasks-response.json"),
                                (queue.statuses, "statuses", "tasks-statuses-response.json")):
        first = check(schema, method(payload={"taskIds": known}, query={"limit": 2}))
        assert len(first[key]) == 2 and first.get("continuationToken")
        second = method(payload={"taskIds": known}, query={"limit": 2, "continuationToken": first["continuationToken"]})
        assert len(second[key]) == 1 and "continuationToken" not in second
        assert sorted(e["taskId"] for e in first[key] + second[key]) == sorted(known)


# ------------------------------------------------------------------ task groups (§6, §7.8-§7.11)

def test_list_task_group_pages_with_limit(queue, unique_queue):
    group_id = slug()
    members = [create(queue, unique_queue, taskGroupId=group_id) for _ in range(3)]
    whole = check("list-task-group-response.json", queue.listTaskGroup(group_id))
    assert (whole["taskGroupId"], whole["schedulerId"]) == (group_id, "-")
    assert "continuationToken" not in whole and "sealed" not in whole
    assert sorted(t["status"]["taskId"] for t in whole["tasks"]) == sorted(members)
    for entry in whole["tasks"]:
        assert entry["task"] == queue.task(entry["status"]["taskId"])
        assert entry["status"] == queue.status(entry["status"]["taskId"])["status"]

    seen, token, pages = [], None, 0
    while True:
        query = {"limit": 2, **({"continuationToken": token} if token else {})}
        page = check("list-task-group-response.json", queue.listTaskGroup(group_id, query=query))
        pages += 1
        seen += [t["status"]["taskId"] for t in page["tasks"]]
        token = page.get("continuationToken")
        assert len(page["tasks"]) == (2 if token else 1)
        if not token:
            break
    assert pages == 2 and sorted(seen) == sorted(members)

    exact = queue.listTaskGroup(group_id, query={"limit": 3})
    assert len(exact["tasks"]) == 3 and "continuationToken" not in exact
    expect_error(404, "ResourceNotFound", queue.listTaskGroup, slug())


def test_get_and_seal_task_group(queue, unique_queue):
    group_id = slug()
    task_id = create(queue, unique_queue, taskGroupId=group_id, schedulerId="e2e-sched")
    group = check("task-group-response.json", queue.getTaskGroup(group_id))
    task_expires = parse(queue.task(task_id)["expires"])
    assert (group["taskGroupId"], group["schedulerId"]) == (group_id, "e2e-sched")
    assert "sealed" not in group
    assert parse(group["expires"]) == task_expires + dt.timedelta(hours=1)

    sealed = check("task-group-response.json", queue.sealTaskGroup(group_id))
    assert sealed["expires"] == group["expires"] and "sealed" in sealed
    assert queue.getTaskGroup(group_id) == sealed
    assert queue.sealTaskGroup(group_id) == sealed  # idempotent, same timestamp
    assert queue.listTaskGroup(group_id)["sealed"] == sealed["sealed"]

    expect_error(404, "ResourceNotFound", queue.getTaskGroup, slug())
    err = expect_error(404, "ResourceNotFound", queue.sealTaskGroup, slug())
    assert "No task-group with taskGroupId" in err.body["message"]


def test_cancel_task_group_cancels_the_unresolved_members_of_a_sealed_group(queue, unique_queue):
    group_id = slug()
    pending = create(queue, unique_queue, taskGroupId=group_id)
    done = create(queue, unique_queue + "-done", taskGroupId=group_id)
    running = create(queue, unique_queue + "-run", taskGroupId=group_id)
    unscheduled = slug()
    queue.createTask(unscheduled, task_definition(unique_queue, taskGroupId=group_id, dependencies=[unscheduled]))
    cancelled_alone = create(queue, unique_queue + "-x", taskGroupId=group_id)
    claim_one(queue, unique_queue + "-done")
    queue.reportCompleted(done, "0")
    claim_one(queue, unique_queue + "-run")
    queue.cancelTask(cancelled_alone)

    err = expect_error(409, "RequestConflict", queue.cancelTaskGroup, group_id)
    assert "Cannot cancel unsealed task group" in err.body["message"]
    queue.sealTaskGroup(group_id)
    reply = check("cancel-task-group-response.json", queue.cancelTaskGroup(group_id))
    assert (reply["taskGroupId"], reply["taskGroupSize"], reply["cancelledCount"]) == (group_id, 5, 3)
    assert sorted(reply["taskIds"]) == sorted([pending, running, unscheduled])
    for task_id in (pending, running, unscheduled):
        status = queue.status(task_id)["status"]
        assert (status["state"], status["runs"][-1]["reasonResolved"]) == ("exception", "canceled")
    assert queue.status(done)["status"]["state"] == "completed"

    again = check("cancel-task-group-response.json", queue.cancelTaskGroup(group_id))
    assert (again["taskGroupSize"], again["cancelledCount"], again["taskIds"]) == (5, 0, [])
    expect_error(404, "ResourceNotFound", queue.cancelTaskGroup, slug())


# ------------------------------------------------------------------ task queues (§7.36-§7.38)

def test_pending_tasks_counts_pending_runs_of_the_queue(queue, unique_queue):
    provisioner, worker_type = unique_queue.split("/")
    empty = check("pending-tasks-response.json", queue.pendingTasks(unique_queue))
    assert empty == {"provisionerId": provisioner, "workerType": worker_type, "taskQueueId": unique_queue,
                     "pendingTasks": 0}
    first = slug()
    definition = task_definition(unique_queue)
    queue.createTask(first, definition)
    create(queue, unique_queue)
    assert check("pending-tasks-response.json", queue.pendingTasks(unique_queue))["pendingTasks"] == 2
    queue.createTask(first, definition)  # idempotent repeat: no duplicate entry
    assert queue.pendingTasks(unique_queue)["pendingTasks"] == 2
    claim_one(queue, unique_queue)
    assert queue.pendingTasks(unique_queue)["pendingTasks"] == 1
    assert queue.pendingTasks(unique_queue + "-none")["pendingTasks"] == 0


def test_list_pending_tasks_in_insertion_order_with_paging(queue, unique_queue):
    assert check("list-pending-tasks-response.json", queue.listPendingTasks(unique_queue)) == {"tasks": []}
    created = []
    for priority in ("lowest", "highest", "low"):
        created.append(create(queue, unique_queue, priority=priority))
        time.sleep(0.01)
    listed = check("list-pending-tasks-response.json", queue.listPendingTasks(unique_queue))
    assert [t["taskId"] for t in listed["tasks"]] == created  # by insertion, not priority
    assert "continuationToken" not in listed
    inserted = [parse(t["inserted"]) for t in listed["tasks"]]
    assert inserted == sorted(inserted)
    for entry in listed["tasks"]:
        assert entry["runId"] == 0 and entry["task"] == queue.task(entry["taskId"])

    first = check("list-pending-tasks-response.json", queue.listPendingTasks(unique_queue, query={"limit": 2}))
    assert [t["taskId"] for t in first["tasks"]] == created[:2] and first.get("continuationToken")
    rest = queue.listPendingTasks(unique_queue, query={"limit": 2, "continuationToken": first["continuationToken"]})
    assert [t["taskId"] for t in rest["tasks"]] == created[2:] and "continuationToken" not in rest


def test_list_claimed_tasks_in_claim_order_with_paging(queue, unique_queue):
    assert check("list-claimed-tasks-response.json", queue.listClaimedTasks(unique_queue)) == {"tasks": []}
    ids = [create(queue, unique_queue) for _ in range(3)]
    for index, task_id in enumerate(ids):
        queue.claimTask(task_id, "0", {"workerGroup": "wg", "workerId": f"w{index}"})
        time.sleep(0.01)
    listed = check("list-claimed-tasks-response.json", queue.listClaimedTasks(unique_queue))
    assert [(t["taskId"], t["runId"], t["workerGroup"], t["workerId"]) for t in listed["tasks"]] == [
        (task_id, 0, "wg", f"w{i}") for i, task_id in enumerate(ids)]
    claimed = [parse(t["claimed"]) for t in listed["tasks"]]
    assert claimed == sorted(claimed)
    assert all(t["task"] == queue.task(t["taskId"]) for t in listed["tasks"])

    first = queue.listClaimedTasks(unique_queue, query={"limit": 2})
    assert [t["taskId"] for t in first["tasks"]] == ids[:2] and first.get("continuationToken")
    query = {"limit": 2, "continuationToken": first["continuationToken"]}
    rest = check("list-claimed-tasks-response.json", queue.listClaimedTasks(unique_queue, query=query))
    assert [t["taskId"] for t in rest["tasks"]] == ids[2:] and "continuationToken" not in rest

    queue.reportCompleted(ids[0], "0")
    queue.cancelTask(ids[1])
    assert [t["taskId"] for t in queue.listClaimedTasks(unique_queue)["tasks"]] == ids[2:]


# ------------------------------------------------------------------ background resolution (§3.6, §4.4)

def test_expired_claims_end_as_claim_expired_and_are_retried(queue, unique_queue):
    retried = create(queue, unique_queue, retries=5)
    final = create(queue, unique_queue, retries=0)
    claims = queue.claimWork(unique_queue, worker(tasks=2))["tasks"]
    assert sorted(c["status"]["taskId"] for c in claims) == sorted([retried, final])

    status = wait_for(lambda: queue.status(retried)["status"], lambda s: len(s["runs"]) == 2, 7)
    assert status["state"] == "pending" and status["retriesLeft"] == 4
    assert [(r["runId"], r["state"], r["reasonCreated"], r.get("reasonResolved")) for r in status["runs"]] == [
        (0, "exception", "scheduled", "claim-expired"), (1, "pending", "retry", None)]
    last = wait_for(lambda: queue.status(final)["status"], lambda s: s["state"] == "exception", 2)
    assert [(r["state"], r.get("reasonResolved")) for r in last["runs"]] == [("exception", "claim-expired")]

    expect_error(409, "RequestConflict", queue.reportCompleted, retried, "0")
    assert [t["taskId"] for t in queue.listClaimedTasks(unique_queue)["tasks"]] == []
    claim = claim_one(queue, unique_queue)
    assert (claim["status"]["taskId"], claim["runId"]) == (retried, 1)


def test_reclaimed_claim_does_not_expire_at_the_original_taken_until(queue, unique_queue):
    task_id = create(queue, unique_queue)
    claimed_at = time.monotonic()
    claim_one(queue, unique_queue)  # takenUntil = claim + 3 s
    time.sleep(1.5)
    queue.reclaimTask(task_id, "0")  # takenUntil = claim + 4.5 s
    time.sleep(max(0.0, claimed_at + 3.9 - time.monotonic()))  # first takenUntil + resolver interval passed
    status = queue.status(task_id)["status"]
    assert (status["state"], len(status["runs"])) == ("running", 1)


def test_reclaim_checks_the_run_before_the_deadline_and_claim_task_the_deadline_first(queue, unique_queue):
    running = create(queue, unique_queue, deadline=iso_in(1.2))
    claim_one(queue, unique_queue)
    pending = create(queue, unique_queue + "-p", deadline=iso_in(1.2))
    time.sleep(1.4)
    err = expect_error(404, "ResourceNotFound", queue.reclaimTask, running, "1")  # 404 run, then deadline (§7.19)
    assert "Run 1 not found" in err.body["message"]
    expect_error(409, "RequestConflict", queue.reclaimTask, running, "0")
    err = expect_error(409, "RequestConflict", queue.claimTask, pending, "5", {"workerGroup": "wg", "workerId": "w1"})
    assert "past its deadline" in err.body["message"]  # deadline before run lookup (§7.18)


def test_tasks_past_their_deadline_end_as_deadline_exceeded(queue, unique_queue):
    deadline = iso_in(2)
    pending = create(queue, unique_queue, deadline=deadline)
    unscheduled = slug()
    queue.createTask(unscheduled, task_definition(unique_queue, deadline=deadline, dependencies=[unscheduled]))
    running_queue = unique_queue + "-run"
    running = create(queue, running_queue, deadline=deadline)
    claim_one(queue, running_queue)

    def all_resolved():
        return [queue.status(t)["status"] for t in (pending, unscheduled, running)]

    statuses = wait_for(all_resolved, lambda ss: all(s["state"] == "exception" for s in ss), 6)
    assert [s["state"] for s in statuses] == ["exception"] * 3
    for status, created_as in zip(statuses, ("scheduled", "exception", "scheduled")):
        [run] = status["runs"]  # no retry after a deadline
        assert (run["reasonCreated"], run["reasonResolved"]) == (created_as, "deadline-exceeded")
    assert statuses[2]["runs"][0]["workerId"] == "w1"

    # immutable after the deadline
    for method in (queue.scheduleTask, queue.rerunTask, queue.cancelTask):
        expect_error(409, "RequestConflict", method, pending)
    expect_error(409, "RequestConflict", queue.reportCompleted, running, "0")
    assert queue.pendingTasks(unique_queue)["pendingTasks"] == 0


# ------------------------------------------------------------------ concurrency (§3.8, edge cases 50-51)

def _concurrently(calls):
    """Run the callables at once; their results (or exceptions) in order."""
    results = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(index, call):
        barrier.wait()
        try:
            results[index] = call()
        except Exception as err:  # noqa: BLE001 - reported to the test
            results[index] = err
    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


@pytest.mark.parametrize("initially", ["unscheduled", "pending"])
def test_concurrent_cancels_all_see_the_same_single_run(server, queue, unique_queue, initially):
    task_id = slug()
    dependencies = [task_id] if initially == "unscheduled" else []
    queue.createTask(task_id, task_definition(unique_queue, dependencies=dependencies))
    clients = [server.queue() for _ in range(10)]
    results = _concurrently([lambda c=c: c.cancelTask(task_id) for c in clients])
    assert not [r for r in results if isinstance(r, Exception)], results
    created_as = "exception" if initially == "unscheduled" else "scheduled"
    for result in results:
        [run] = result["status"]["runs"]
        assert (run["state"], run["reasonCreated"], run["reasonResolved"]) == ("exception", created_as, "canceled")
    assert len({json.dumps(r, sort_keys=True) for r in results}) == 1


def test_concurrent_identical_creates_all_succeed_with_one_task(server, queue, unique_queue):
    task_id = slug()
    definition = task_definition(unique_queue)
    results = _concurrently([lambda c=server.queue(): c.createTask(task_id, definition) for _ in range(8)])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len({json.dumps(r, sort_keys=True) for r in results}) == 1
    assert len(runs_of(queue, task_id)) == 1
    assert queue.pendingTasks(unique_queue)["pendingTasks"] == 1


def test_concurrent_conflicting_creates_let_exactly_one_win(server, queue, unique_queue):
    task_id = slug()
    variants = [task_definition(unique_queue, payload={"variant": i}) for i in range(8)]
    results = _concurrently([lambda c=server.queue(), d=d: c.createTask(task_id, d) for d in variants])
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1, results
    assert all(isinstance(r, TaskclusterRestFailure) and r.status_code == 409 for r in losers), losers
    stored = queue.task(task_id)["payload"]
    assert stored == variants[results.index(winners[0])]["payload"]


def test_concurrent_claim_work_claims_each_task_exactly_once(server, queue, unique_queue):
    ids = [create(queue, unique_queue) for _ in range(10)]
    results = _concurrently([lambda c=server.queue(), i=i: c.claimWork(unique_queue, worker(worker_id=f"w{i}", tasks=2))
                             for i in range(6)])
    assert not [r for r in results if isinstance(r, Exception)], results
    claimed = [c["status"]["taskId"] for r in results for c in r["tasks"]]
    assert sorted(claimed) == sorted(ids)
    for result in results:
        for claim in result["tasks"]:
            run = queue.status(claim["status"]["taskId"])["status"]["runs"][0]
            assert (run["state"], run["workerId"]) == ("running", claim["workerId"])


def test_long_polling_workers_share_new_work_without_double_claims(server, queue, unique_queue):
    results = {}

    def poll(index):
        results[index] = server.queue().claimWork(unique_queue, worker(worker_id=f"w{index}"))["tasks"]

    pollers = [threading.Thread(target=poll, args=(i,)) for i in range(4)]
    for poller in pollers:
        poller.start()
    time.sleep(0.4)
    ids = [create(queue, unique_queue) for _ in range(2)]
    for poller in pollers:
        poller.join(10)
    claimed = [c["status"]["taskId"] for claims in results.values() for c in claims]
    assert sorted(claimed) == sorted(ids)
    assert sorted(len(claims) for claims in results.values()) == [0, 0, 1, 1]
