"""Provisioners, worker types, task queues, workers and quarantine (behaviour
spec §7.33-§7.47, §10) with the official client against the real server."""

import datetime as dt
import secrets
import time

import pytest
import taskcluster
from taskcluster.exceptions import TaskclusterRestFailure

from tests.support.reference import v64_queue
from tests.support.server import task_definition

WORKER = {"workerGroup": "wg", "workerId": "w1"}


@pytest.fixture
def queue(server):
    """The client as of v64.2.5 (the installed one lacks declareProvisioner and declareWorkerType)."""
    return v64_queue(server.options())


def fresh_queue() -> tuple[str, str, str]:
    provisioner, worker_type = f"p{secrets.token_hex(4)}", f"w{secrets.token_hex(4)}"
    return provisioner, worker_type, f"{provisioner}/{worker_type}"


def refused(call, *args) -> tuple[int, dict]:
    with pytest.raises(TaskclusterRestFailure) as info:
        call(*args)
    return info.value.status_code, info.value.body


def in_days(days: float) -> str:
    return ms(taskcluster.fromNow(f"{days} days" if days >= 0 else f"-{-days} days"))


def ms(moment: dt.datetime) -> str:
    """A date as upstream answers it (JavaScript's toJSON: milliseconds)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def create(queue, task_queue_id: str, **overrides) -> str:
    task_id = taskcluster.slugId()
    queue.createTask(task_id, task_definition(task_queue_id, **overrides))
    return task_id


def claim(queue, task_queue_id: str, worker=WORKER, tasks: int = 1) -> list[dict]:
    return queue.claimWork(task_queue_id, {**worker, "tasks": tasks})["tasks"]


# ------------------------------------------------------------------ task queues, worker types, provisioners

def test_claim_work_records_the_queue_the_worker_type_and_the_provisioner(queue):
    provisioner, worker_type, task_queue_id = fresh_queue()
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    assert claim(queue, task_queue_id) == []
    record = queue.getTaskQueue(task_queue_id)
    assert record["taskQueueId"] == task_queue_id
    assert (record["description"], record["stability"]) == ("", "experimental")
    assert taskcluster.stringDate(before) <= record["lastDateActive"]
    expires = dt.datetime.fromisoformat(record["expires"].replace("Z", "+00:00"))
    assert dt.timedelta(hours=23) < expires - before < dt.timedelta(hours=25)  # now + 1 day
    assert queue.getWorkerType(provisioner, worker_type) == {
        "provisionerId": provisioner, "workerType": worker_type, **record, "actions": []}
    assert queue.listWorkerTypes(provisioner)["workerTypes"] == [
        {"provisionerId": provisioner, "workerType": worker_type, **record}]
    assert queue.getProvisioner(provisioner) == {
        "provisionerId": provisioner, "expires": record["expires"], "lastDateActive": record["lastDateActive"],
        "description": "", "stability": "experimental", "actions": []}
    assert queue.getProvisioner(provisioner) in queue.listProvisioners()["provisioners"]
    assert record in queue.listTaskQueues()["taskQueues"]


def test_unknown_queue_worker_type_and_provisioner_are_404_or_empty(queue):
    provisioner, worker_type, task_queue_id = fresh_queue()
    status, body = refused(queue.getTaskQueue, task_queue_id)
    assert (status, body["code"]) == (404, "ResourceNotFound")
    assert f"Task queue with `{task_queue_id}` not found. Are you sure it was created?" in body["message"]
    status, body = refused(queue.getWorkerType, provisioner, worker_type)
    assert status == 404
    assert f"Worker-type `{worker_type}` with Provisioner `{provisioner}` not found." in body["message"]
    status, body = refused(queue.getProvisioner, provisioner)
    assert status == 404 and f"Provisioner `{provisioner}` not found." in body["message"]
    status, body = refused(queue.declareProvisioner, provisioner, {"description": "x"})
    assert status == 404
    assert queue.listWorkerTypes(provisioner) == {"workerTypes": []}
    assert queue.listWorkers(provisioner, worker_type) == {"workers": []}


def test_declare_worker_type_creates_and_updates_the_queue(queue):
    provisioner, worker_type, task_queue_id = fresh_queue()
    created = queue.declareWorkerType(provisioner, worker_type, {"description": "builds"})
    assert (created["description"], created["stability"], created["actions"]) == ("builds", "experimental", [])
    assert queue.getTaskQueue(task_queue_id)["description"] == "builds"
    expires = in_days(30)
    updated = queue.declareWorkerType(provisioner, worker_type, {"stability": "stable", "expires": expires})
    assert (updated["description"], updated["stability"], updated["expires"]) == ("builds", "stable", expires)
    # expires never moves back
    again = queue.declareWorkerType(provisioner, worker_type, {"expires": in_days(2)})
    assert again["expires"] == expires
    # declareProvisioner stores nothing and answers the synthesised provisioner
    declared = queue.declareProvisioner(provisioner, {"description": "ignored", "stability": "stable"})
    assert (declared["description"], declared["stability"], declared["actions"]) == ("", "experimental", [])


def test_task_queue_listings_page(queue):
    provisioner = f"p{secrets.token_hex(4)}"
    for worker_type in ("wa", "wb", "wc"):
        queue.declareWorkerType(provisioner, worker_type, {"description": worker_type})
    first = queue.listWorkerTypes(provisioner, query={"limit": 2})
    assert [w["workerType"] for w in first["workerTypes"]] == ["wa", "wb"]
    rest = queue.listWorkerTypes(provisioner, query={"limit": 2, "continuationToken": first["continuationToken"]})
    assert [w["workerType"] for w in rest["workerTypes"]] == ["wc"] and "continuationToken" not in rest
    seen, token = [], None
    while True:
        page = queue.listTaskQueues(query={"limit": 1, **({"continuationToken": token} if token else {})})
        seen += [q["taskQueueId"] for q in page["taskQueues"]]
        token = page.get("continuationToken")
        if not token:
            break
    assert [f"{provisioner}/{w}" for w in ("wa", "wb", "wc")] == [q for q in seen if q.startswith(provisioner)]
    assert seen == sorted(seen)
    # listProvisioners never pages (upstream's Quirk Q8): `limit` caps it, no token
    capped = queue.listProvisioners(query={"limit": 1})
    assert len(capped["provisioners"]) == 1 and "continuationToken" not in capped


def test_claim_task_records_the_queue_for_five_days(queue):
    provisioner, worker_type, task_queue_id = fresh_queue()
    task_id = create(queue, task_queue_id)
    queue.claimTask(task_id, "0", WORKER)
    expires = dt.datetime.fromisoformat(queue.getTaskQueue(task_queue_id)["expires"].replace("Z", "+00:00"))
    assert expires - dt.datetime.now(dt.timezone.utc) > dt.timedelta(days=4, hours=23)
    status, _ = refused(queue.getWorker, provisioner, worker_type, WORKER["workerGroup"], WORKER["workerId"])
    assert status == 404  # claimTask does not create the worker


# ------------------------------------------------------------------ workers

def test_get_worker_lists_the_latest_twenty_tasks_in_claim_order(queue):
    provisioner, worker_type, task_queue_id = fresh_queue()
    task_ids = [create(queue, task_queue_id) for _ in range(23)]
    claimed = []
    while len(claimed) < len(task_ids):
        claimed += [(c["status"]["taskId"], c["runId"]) for c in claim(queue, task_queue_id, tasks=4)]
    worker = queue.getWorker(provisioner, worker_type, WORKER["workerGroup"], WORKER["workerId"])
    assert [(t["taskId"], t["runId"]) for t in worker["recentTasks"]] == claimed[-20:]
    assert [c[0] for c in claimed] == task_ids  # claimWork serves in creation order
    assert (worker["provisionerId"], worker["workerType"], worker["taskQueueId"]) == (
        provisioner, worker_type, task_queue_id)
    assert worker["actions"] == [] and worker["quarantineDetails"] == []
    assert worker["quarantineUntil"] < taskcluster.stringDate(taskcluster.fromNow("-9 years"))
    listed = queue.listWorkers(provisioner, worker_type)["workers"]
    assert listed == [{"workerGroup": "wg", "workerId": "w1", "firstClaim": worker["firstClaim"],
                       "lastDateActive": worker["lastDateActive"],
                       "latestTask": {"taskId": claimed[-1][0], "runId": 0}}]


def test_declare_worker(queue):
    provisioner, worker_type, task_queue_id = fresh_queue()
    status, body = refused(queue.declareWorker, provisioner, worker_type, "wg", "new", {})
    assert (status, body["code"]) == (400, "InputError")  # upstream: a 500 (Quirk Q9)
    worker = queue.declareWorker(provisioner, worker_type, "wg", "new", {"expires": "3000-01-01T00:00:00.000Z"})
    assert worker["expires"] == "3000-01-01T00:00:00.000Z" and worker["recentTasks"] == []
    assert queue.getTaskQueue(task_queue_id)["stability"] == "experimental"
    assert queue.getProvisioner(provisioner)["provisionerId"] == provisioner
    assert queue.declareWorker(provisioner, worker_type, "wg", "new", {})["expires"] == worker["expires"]
    status, body = refused(queue.declareWorker, provisioner, worker_type, "wg", "new",
                           {"expires": in_days(1), "quarantineUntil": in_days(1)})
    assert (status, body["code"]) == (400, "InputValidationError")


def test_expired_workers_are_hidden_unless_quarantined(queue):
    provisioner, worker_type, _ = fresh_queue()
    queue.declareWorkerType(provisioner, worker_type, {"expires": in_days(5)})
    for name, expires, quarantine in [("pp", -1, -1), ("pf", -1, 1), ("fp", 1, -1), ("ff", 1, 1)]:
        queue.declareWorker(provisioner, worker_type, "wg", name, {"expires": in_days(expires)})
        queue.quarantineWorker(provisioner, worker_type, "wg", name, {"quarantineUntil": in_days(quarantine)})
    # quarantineWorker keeps a worker at least a day: move pp/pf back below now by declaring nothing newer
    listed = [w["workerId"] for w in queue.listWorkers(provisioner, worker_type)["workers"]]
    assert listed == ["ff", "fp", "pf", "pp"]  # quarantineWorker extended every expiry to now + 1 day
    quarantined = queue.listWorkers(provisioner, worker_type, query={"quarantined": "true"})["workers"]
    assert [w["workerId"] for w in quarantined] == ["ff", "pf"]
    assert all("quarantineUntil" in w for w in quarantined)
    free = queue.listWorkers(provisioner, worker_type, query={"quarantined": "false"})["workers"]
    assert [w["workerId"] for w in free] == ["fp", "pp"] and all("quarantineUntil" not in w for w in free)
    page = queue.listWorkers(provisioner, worker_type, query={"limit": 3})
    assert len(page["workers"]) == 3 and page["continuationToken"]
    rest = queue.listWorkers(provisioner, worker_type, query={"continuationToken": page["continuationToken"]})
    assert [w["workerId"] for w in rest["workers"]] == ["pp"]


def test_get_worker_404s(queue):
    provisioner, worker_type, _ = fresh_queue()
    status, body = refused(queue.getWorker, provisioner, worker_type, "wg", "nobody")
    assert status == 404 and "Are you sure it was created?" in body["message"]
    status, body = refused(queue.quarantineWorker, provisioner, worker_type, "wg", "nobody",
                           {"quarantineUntil": in_days(1)})
    assert status == 404 and "not found." in body["message"] and "Are you sure" not in body["message"]


# ------------------------------------------------------------------ quarantine

def test_a_quarantined_worker_gets_no_work_until_lifted(server, queue):
    provisioner, worker_type, task_queue_id = fresh_queue()
    assert claim(queue, task_queue_id) == []  # the worker is seen
    until = ms(taskcluster.fromNow("5 days"))
    reply = queue.quarantineWorker(provisioner, worker_type, "wg", "w1",
                                   {"quarantineUntil": until, "quarantineInfo": "bad disk"})
    assert reply["quarantineUntil"] == until
    assert reply["quarantineDetails"] == [{"clientId": "e2e-root", "updatedAt": reply["quarantineDetails"][0][
        "updatedAt"], "quarantineUntil": until, "quarantineInfo": "bad disk"}]
    task_id = create(queue, task_queue_id)
    assert claim(queue, task_queue_id) == []
    status, body = refused(queue.claimTask, task_id, "0", WORKER)
    assert (status, body["code"]) == (409, "RequestConflict")  # upstream: a 500 (Quirk Q7)
    assert queue.status(task_id)["status"]["state"] == "pending"
    # another worker still gets work... after the quarantined one's attempt, none was taken
    assert queue.pendingTasks(task_queue_id)["pendingTasks"] == 1
    lifted = queue.quarantineWorker(provisioner, worker_type, "wg", "w1",
                                    {"quarantineUntil": taskcluster.stringDate(taskcluster.fromNow("-1 minute"))})
    assert [d["quarantineInfo"] for d in lifted["quarantineDetails"]] == ["bad disk", "[unspecified]"]
    assert [c["status"]["taskId"] for c in claim(queue, task_queue_id)] == [task_id]
    worker = queue.getWorker(provisioner, worker_type, "wg", "w1")
    assert worker["quarantineDetails"] == lifted["quarantineDetails"]


def test_a_quarantine_ends_when_its_time_passes(queue):
    provisioner, worker_type, task_queue_id = fresh_queue()
    assert claim(queue, task_queue_id) == []
    soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=2)
    queue.quarantineWorker(provisioner, worker_type, "wg", "w1", {"quarantineUntil": taskcluster.stringDate(soon)})
    task_id = create(queue, task_queue_id)
    deadline = time.monotonic() + 30
    claimed: list = []
    while not claimed and time.monotonic() < deadline:
        claimed = claim(queue, task_queue_id)
        if not claimed:
            assert dt.datetime.now(dt.timezone.utc) < soon + dt.timedelta(seconds=3)  # the wait spans the end
    assert [c["status"]["taskId"] for c in claimed] == [task_id]


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("body", [
    {}, {"quarantineUntil": "tomorrow"}, {"quarantineUntil": "2024-13-01T00:00:00Z"},
    {"quarantineUntil": 1234}, {"quarantineUntil": "2030-01-01T00:00:00Z", "quarantineInfo": "x" * 4001},
    {"quarantineUntil": "2030-01-01T00:00:00Z", "extra": 1},
])
def test_quarantine_with_a_bad_body_is_400(queue, body):
    status, reply = refused(queue.quarantineWorker, "p", "w", "wg", "w1", body)
    assert (status, reply["code"]) == (400, "InputValidationError")


@pytest.mark.parametrize("call,args", [
    ("getProvisioner", ["bad!id"]), ("listWorkerTypes", ["x" * 39]), ("getWorkerType", ["p", "Upper"]),
    ("getWorker", ["p", "w", "wg", "bad id"]), ("listWorkers", ["p", "w/x"]),
    ("getTaskQueue", ["nope"]), ("getTaskQueue", ["p/Upper"]),
])
def test_forged_ids_are_400(queue, call, args):
    status, body = refused(getattr(queue, call), *args)
    assert (status, body["code"]) in {(400, "InvalidRequestArguments"), (404, "ResourceNotFound")}, body
    if call != "listWorkers":
        assert (status, body["code"]) == (400, "InvalidRequestArguments"), body


@pytest.mark.parametrize("query", [{"quarantined": "yes"}, {"limit": "-1"}, {"limit": "x"}, {"other": "1"}])
def test_bad_list_workers_queries_are_400(queue, query):
    status, body = refused(lambda: queue.listWorkers("p", "w", query=query))
    assert (status, body["code"]) == (400, "InvalidRequestArguments")


@pytest.mark.parametrize("call,args,body", [
    ("declareWorkerType", ["p", "w"], {"stability": "solid"}),
    ("declareWorkerType", ["p", "w"], {"expires": "soon"}),
    ("declareProvisioner", ["p"], {"unknown": 1}),
    ("declareWorker", ["p", "w", "wg", "w1"], {"expires": "never"}),
])
def test_bad_declare_bodies_are_400(queue, call, args, body):
    status, reply = refused(getattr(queue, call), *args, body)
    assert (status, reply["code"]) == (400, "InputValidationError")


def test_a_bad_continuation_token_starts_over(queue):
    provisioner, worker_type, _ = fresh_queue()
    queue.declareWorker(provisioner, worker_type, "wg", "w1", {"expires": in_days(1)})
    listed = queue.listWorkers(provisioner, worker_type, query={"continuationToken": "forged"})
    assert [w["workerId"] for w in listed["workers"]] == ["w1"]


# ------------------------------------------------------------------ taskQueueCounts (upstream v72)

def test_task_queue_counts_are_exact(queue):
    _, _, task_queue_id = fresh_queue()
    assert queue.taskQueueCounts(task_queue_id) == {
        "provisionerId": task_queue_id.split("/")[0], "workerType": task_queue_id.split("/")[1],
        "taskQueueId": task_queue_id, "pendingTasks": 0, "claimedTasks": 0}
    task_ids = [create(queue, task_queue_id) for _ in range(4)]
    queue.cancelTask(task_ids[0])  # leaves the pending queue at once (upstream since v65.4)
    [claimed] = claim(queue, task_queue_id)
    counts = queue.taskQueueCounts(task_queue_id)
    assert (counts["pendingTasks"], counts["claimedTasks"]) == (2, 1)
    assert counts["pendingTasks"] == queue.pendingTasks(task_queue_id)["pendingTasks"]
    queue.reportCompleted(claimed["status"]["taskId"], "0")
    assert len(claim(queue, task_queue_id, tasks=32)) == 2  # pendingTasks is what claimWork can claim
    assert queue.taskQueueCounts(task_queue_id)["claimedTasks"] == 2


@pytest.mark.parametrize("task_queue_id", ["nope", "p/Upper", "p/w/x"])
def test_task_queue_counts_of_a_forged_queue_is_400_or_404(queue, task_queue_id):
    status, body = refused(queue.taskQueueCounts, task_queue_id)
    assert status in (400, 404), body


# ------------------------------------------------------------------ priority changes (upstream v95.1)

def test_a_raised_priority_is_claimed_first_at_once(queue):
    _, _, task_queue_id = fresh_queue()
    first, second, third = (create(queue, task_queue_id, priority="low") for _ in range(3))
    reply = queue.changeTaskPriority(third, {"newPriority": "highest"})
    assert reply["status"]["priority"] == "highest" and reply["status"]["state"] == "pending"
    assert queue.task(third)["priority"] == "low"  # the definition stays as submitted
    queue.changeTaskPriority(first, {"newPriority": "lowest"})
    order = [claim(queue, task_queue_id)[0]["status"]["taskId"] for _ in range(3)]
    assert order == [third, second, first]


def test_a_changed_priority_holds_for_the_retry(queue):
    _, _, task_queue_id = fresh_queue()
    early = create(queue, task_queue_id, priority="low", retries=1)
    later = create(queue, task_queue_id, priority="low")
    [claimed] = claim(queue, task_queue_id)
    assert claimed["status"]["taskId"] == early
    queue.changeTaskPriority(later, {"newPriority": "very-high"})
    queue.changeTaskPriority(early, {"newPriority": "highest"})  # running: its retry takes it
    worker = taskcluster.Queue({"rootUrl": queue.options["rootUrl"], "credentials": claimed["credentials"],
                                "maxRetries": 0})
    worker.reportException(early, "0", {"reason": "worker-shutdown"})
    assert [c["status"]["taskId"] for c in claim(queue, task_queue_id, tasks=2)] == [early, later]


def test_priority_change_refusals(queue):
    _, _, task_queue_id = fresh_queue()
    task_id = create(queue, task_queue_id)
    status, body = refused(queue.changeTaskPriority, taskcluster.slugId(), {"newPriority": "high"})
    assert (status, body["code"]) == (404, "ResourceNotFound")
    for bad in ({}, {"newPriority": "urgent"}, {"newPriority": 7}, {"newPriority": "high", "x": 1}):
        status, body = refused(queue.changeTaskPriority, task_id, bad)
        assert (status, body["code"]) == (400, "InputValidationError"), bad
    queue.cancelTask(task_id)
    status, body = refused(queue.changeTaskPriority, task_id, {"newPriority": "high"})
    assert (status, body["code"]) == (409, "RequestConflict")
    status, body = refused(queue.changeTaskGroupPriority, taskcluster.slugId(), {"newPriority": "high"})
    assert (status, body["code"]) == (404, "ResourceNotFound")
    status, body = refused(queue.changeTaskPriority, "not-a-slug", {"newPriority": "high"})
    assert (status, body["code"]) == (400, "InvalidRequestArguments")


def test_a_group_priority_change_moves_its_unresolved_tasks(queue):
    _, _, task_queue_id = fresh_queue()
    group = taskcluster.slugId()
    other = create(queue, task_queue_id, priority="medium")
    done, waiting, also = (create(queue, task_queue_id, priority="low", taskGroupId=group) for _ in range(3))
    assert claim(queue, task_queue_id)[0]["status"]["taskId"] == other
    queue.cancelTask(done)
    reply = queue.changeTaskGroupPriority(group, {"newPriority": "high"})
    assert reply == {"taskGroupId": group, "schedulerId": "-", "newPriority": "high", "tasksAffected": 2,
                     "taskIds": [waiting, also]}
    assert queue.status(done)["status"].get("priority") is None
    later = create(queue, task_queue_id, priority="medium")
    assert [c["status"]["taskId"] for c in claim(queue, task_queue_id, tasks=3)] == [waiting, also, later]
    again = queue.changeTaskGroupPriority(group, {"newPriority": "high"})
    assert (again["tasksAffected"], again["taskIds"]) == (0, [])


# ------------------------------------------------------------------ official output schemas (v64.2.5)

def test_replies_satisfy_the_official_output_schemas(queue):
    from tests.e2e.test_endpoints import check

    provisioner, worker_type, task_queue_id = fresh_queue()
    queue.declareWorkerType(provisioner, worker_type, {"description": "d", "stability": "stable"})
    claim(queue, task_queue_id)  # the worker is seen
    task_id = create(queue, task_queue_id)
    claim(queue, task_queue_id)
    path = [provisioner, worker_type, "wg", "w1"]
    check("list-provisioners-response.json", queue.listProvisioners())
    check("provisioner-response.json", queue.getProvisioner(provisioner))
    check("provisioner-response.json", queue.declareProvisioner(provisioner, {}))
    check("list-workertypes-response.json", queue.listWorkerTypes(provisioner))
    check("workertype-response.json", queue.getWorkerType(provisioner, worker_type))
    check("workertype-response.json", queue.declareWorkerType(provisioner, worker_type, {}))
    check("list-taskqueues-response.json", queue.listTaskQueues())
    check("taskqueue-response.json", queue.getTaskQueue(task_queue_id))
    listed = check("list-workers-response.json", queue.listWorkers(provisioner, worker_type))
    assert listed["workers"][0]["latestTask"] == {"taskId": task_id, "runId": 0}
    check("worker-response.json", queue.getWorker(*path))
    quarantined = check("worker-response.json", queue.quarantineWorker(*path, {"quarantineUntil": in_days(1)}))
    check("list-workers-response.json", queue.listWorkers(provisioner, worker_type, query={"quarantined": "true"}))
    check("worker-response.json", queue.declareWorker(*path, {"expires": in_days(2)}))
    assert quarantined["quarantineDetails"][0]["quarantineInfo"] == "[unspecified]"
