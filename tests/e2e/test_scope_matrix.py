"""Every endpoint the gateway serves refuses callers without its scopes, as
upstream would (behaviour spec §1.2-§1.4, §7.0): no credentials and a wrong
scope ⇒ 403 InsufficientScopes, expired temporary credentials ⇒ 401
AuthenticationFailed, another run's credentials (where a run scope applies)
⇒ 403 - each in Taskcluster's error format. Endpoints without scopes answer
without credentials.

The served endpoints are checked against the v1 API reference: every entry of
api.json is either served (method, route and scopes as declared) or listed in
NOT_YET_SERVED; serving one of those, or a new api.json entry, fails here
until it gets a case below."""

import datetime as dt
import json

import pytest
import taskcluster
from taskcluster.exceptions import TaskclusterAuthFailure, TaskclusterRestFailure

from taskjournal.services.api_gateway.endpoints import ENDPOINTS

from tests.support import reference
from tests.support.server import ROOT_CLIENT_ID, Server, task_definition

NOT_YET_SERVED: set[str] = set()
# Endpoints upstream added after v64.2.5 (behaviour spec §15): name -> scope expression; method and route
# are checked against the installed (later) official client.
LATER_UPSTREAM = {
    "taskQueueCounts": {"AllOf": ["queue:pending-count:<taskQueueId>", "queue:claimed-count:<taskQueueId>"]},
    "changeTaskPriority": {"AnyOf": ["queue:change-task-priority:<taskId>",
                                     "queue:change-task-priority-in-queue:<taskQueueId>"]},
    "changeTaskGroupPriority": "queue:change-task-group-priority:<schedulerId>/<taskGroupId>",
}

SERVED = {endpoint.name: endpoint for endpoint in ENDPOINTS}
QUEUE = "matrix-prov/matrix-worker"
WORKER = {"workerGroup": "matrix-group", "workerId": "matrix-worker"}
WORKER_PATH = ["matrix-prov", "matrix-worker", "matrix-group", "matrix-worker"]


# ------------------------------------------------------------------ the reference

def api_entries() -> dict:
    api_json = reference.require("references", "queue", "v1", "api.json")
    return {entry["name"]: entry for entry in json.loads(api_json.read_text())["entries"]}


def test_every_api_entry_is_served_or_listed_as_not_yet_served():
    entries = api_entries()
    served = set(SERVED) - set(LATER_UPSTREAM)
    assert not served & NOT_YET_SERVED, "served now: move them from NOT_YET_SERVED to the matrix"
    assert served | NOT_YET_SERVED == set(entries), {
        "neither served nor listed": sorted(set(entries) - served - NOT_YET_SERVED),
        "not in api.json": sorted((served | NOT_YET_SERVED) - set(entries))}


def test_served_endpoints_are_declared_as_in_the_reference():
    entries = api_entries()
    for name, endpoint in SERVED.items():
        if name in LATER_UPSTREAM:
            entry = {**taskcluster.Queue.funcinfo[name], "scopes": LATER_UPSTREAM[name]}
        else:
            entry = entries[name]
        assert (endpoint.method, endpoint.route) == (entry["method"].upper(), entry["route"]), name
        assert endpoint.scopes == entry.get("scopes"), name


def test_every_served_endpoint_has_a_case_here():
    assert set(SERVED) == set(CALLS) | set(UNSCOPED), "add a case for each newly served endpoint"
    assert all(SERVED[name].scopes is None for name in UNSCOPED)
    assert all(SERVED[name].scopes is not None for name in CALLS)


# ------------------------------------------------------------------ the server and its state

class World:
    """A server with a task of each kind the endpoints need."""

    def __init__(self, server: Server):
        self.server = server
        root = server.queue()
        self.group = taskcluster.slugId()
        self.task = self._create(root, self.group)  # pending, in a sealed group
        self.running = self._create(root, self.group)
        self.other = self._create(root, self.group)
        self.run_credentials = root.claimTask(self.running, "0", WORKER)["credentials"]
        self.other_run_credentials = root.claimTask(self.other, "0", WORKER)["credentials"]
        root.sealTaskGroup(self.group)  # cancelTaskGroup answers 409 before 403 for an unsealed group
        root.declareWorker(*WORKER_PATH, {"expires": taskcluster.stringDate(taskcluster.fromNow("1 day"))})

    @staticmethod
    def _create(root, group: str) -> str:
        task_id = taskcluster.slugId()
        root.createTask(task_id, task_definition(QUEUE, taskGroupId=group))
        return task_id


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    server = Server(tmp_path_factory.mktemp("tj-matrix"), None)
    yield World(server)
    server.stop()


# name -> (route arguments, payload or None) for a request that reaches the scope check
CALLS = {
    "task": lambda w: ([w.task], None),
    "tasks": lambda w: ([], {"taskIds": [w.task]}),
    "statuses": lambda w: ([], {"taskIds": [w.task]}),
    "status": lambda w: ([w.task], None),
    "listTaskGroup": lambda w: ([w.group], None),
    "cancelTaskGroup": lambda w: ([w.group], None),
    "getTaskGroup": lambda w: ([w.group], None),
    "sealTaskGroup": lambda w: ([w.group], None),
    "listDependentTasks": lambda w: ([w.task], None),
    "createTask": lambda w: ([taskcluster.slugId()], task_definition(QUEUE)),
    "scheduleTask": lambda w: ([w.task], None),
    "rerunTask": lambda w: ([w.task], None),
    "cancelTask": lambda w: ([w.task], None),
    "claimWork": lambda w: ([QUEUE], {**WORKER, "tasks": 1}),
    "claimTask": lambda w: ([w.task, "0"], WORKER),
    "reclaimTask": lambda w: ([w.running, "0"], None),
    "reportCompleted": lambda w: ([w.running, "0"], None),
    "reportFailed": lambda w: ([w.running, "0"], None),
    "reportException": lambda w: ([w.running, "0"], {"reason": "worker-shutdown"}),
    "pendingTasks": lambda w: ([QUEUE], None),
    "listPendingTasks": lambda w: ([QUEUE], None),
    "listClaimedTasks": lambda w: ([QUEUE], None),
    "createArtifact": lambda w: ([w.running, "0", "public/x"], {"storageType": "reference", "url": "https://a.b/",
                                                               "contentType": "text/plain",
                                                               "expires": taskcluster.stringDate(
                                                                   taskcluster.fromNow("1 day"))}),
    "finishArtifact": lambda w: ([w.running, "0", "public/x"], {"uploadId": taskcluster.slugId()}),
    "getArtifact": lambda w: ([w.running, "0", "private/x"], None),
    "getLatestArtifact": lambda w: ([w.running, "private/x"], None),
    "listArtifacts": lambda w: ([w.running, "0"], None),
    "listLatestArtifacts": lambda w: ([w.running], None),
    "artifactInfo": lambda w: ([w.running, "0", "private/x"], None),
    "latestArtifactInfo": lambda w: ([w.running, "private/x"], None),
    "artifact": lambda w: ([w.running, "0", "private/x"], None),
    "latestArtifact": lambda w: ([w.running, "private/x"], None),
    "taskQueueCounts": lambda w: ([QUEUE], None),
    "changeTaskPriority": lambda w: ([w.task], {"newPriority": "highest"}),
    "changeTaskGroupPriority": lambda w: ([w.group], {"newPriority": "highest"}),
    "listProvisioners": lambda w: ([], None),
    "getProvisioner": lambda w: (["matrix-prov"], None),
    "declareProvisioner": lambda w: (["matrix-prov"], {"description": "refused"}),
    "listWorkerTypes": lambda w: (["matrix-prov"], None),
    "getWorkerType": lambda w: (["matrix-prov", "matrix-worker"], None),
    "declareWorkerType": lambda w: (["matrix-prov", "matrix-worker"], {"description": "refused"}),
    "listTaskQueues": lambda w: ([], None),
    "getTaskQueue": lambda w: ([QUEUE], None),
    "listWorkers": lambda w: (["matrix-prov", "matrix-worker"], None),
    "getWorker": lambda w: (WORKER_PATH, None),
    "quarantineWorker": lambda w: (WORKER_PATH, {"quarantineUntil": taskcluster.stringDate(
        taskcluster.fromNow("1 day"))}),
    "declareWorker": lambda w: (WORKER_PATH, {"expires": taskcluster.stringDate(taskcluster.fromNow("2 days"))}),
}
# the run scope each run-scoped endpoint needs (run credentials hold it for their own run only)
RUN_SCOPE = {"reclaimTask": "reclaim-task", "reportCompleted": "resolve-task", "reportFailed": "resolve-task",
             "reportException": "resolve-task", "createArtifact": "create-artifact", "finishArtifact": "create-artifact"}
RUN_SCOPED = set(RUN_SCOPE)
UNSCOPED = {"ping", "lbheartbeat", "version", "heartbeat"}


# ------------------------------------------------------------------ callers

def temporary(server: Server, scopes: list[str], start: int = -60, expiry: int = 3600) -> dict:
    now = dt.datetime.now(dt.timezone.utc)
    issued = taskcluster.createTemporaryCredentials(ROOT_CLIENT_ID, server.token, now + dt.timedelta(seconds=start),
                                                    now + dt.timedelta(seconds=expiry), scopes)
    return {key: value.decode() if isinstance(value, bytes) else value
            for key, value in issued.items() if key in ("clientId", "accessToken", "certificate")}


CALLERS = {
    "anonymous": (lambda w: None, 403, "InsufficientScopes"),
    "wrong-scope": (lambda w: temporary(w.server, ["queue:get-task:nothing-here", "queue:claim-task:other/*",
                                                   "assume:scheduler-id:other/*"]), 403, "InsufficientScopes"),
    "expired": (lambda w: temporary(w.server, ["*"], start=-7200, expiry=-3600), 401, "AuthenticationFailed"),
}


def client(world: World, credentials: dict | None):
    """The official client as of v64.2.5 (later ones lack declareProvisioner and declareWorkerType)."""
    if credentials is None:
        return reference.v64_queue({"rootUrl": world.server.root_url, "maxRetries": 0})
    return reference.v64_queue(world.server.options(dict(credentials)))


def call(queue: taskcluster.Queue, name: str, args: list, payload):
    return getattr(queue, name)(*args, *([payload] if payload is not None else []))


def refusal(queue: taskcluster.Queue, name: str, args: list, payload) -> tuple[int, dict]:
    with pytest.raises((TaskclusterRestFailure, TaskclusterAuthFailure)) as info:
        call(queue, name, args, payload)
    return info.value.status_code, info.value.body


def assert_error_format(body: dict, name: str, code: str, status: int) -> None:
    assert body["code"] == code, body
    assert body["requestInfo"]["method"] == name, body
    assert {"params", "payload", "time"} <= set(body["requestInfo"]), body
    assert f"* errorCode:  {code}\n* statusCode: {status}\n" in body["message"], body


@pytest.mark.parametrize("caller", sorted(CALLERS))
@pytest.mark.parametrize("name", sorted(CALLS))
def test_caller_without_the_scopes_is_refused(world, name, caller):
    credentials, status, code = CALLERS[caller]
    args, payload = CALLS[name](world)
    got, body = refusal(client(world, credentials(world)), name, args, payload)
    assert got == status, (name, caller, body)
    assert_error_format(body, name, code, status)


@pytest.mark.parametrize("name", sorted(RUN_SCOPED))
def test_another_runs_credentials_are_refused(world, name):
    args, payload = CALLS[name](world)
    assert args[0] == world.running
    got, body = refusal(client(world, world.other_run_credentials), name, args, payload)
    assert got == 403, (name, body)
    assert_error_format(body, name, "InsufficientScopes", 403)
    assert f"queue:{RUN_SCOPE[name]}:{world.running}/0" in body["message"]


def test_run_credentials_hold_their_own_run(world):
    """The refusals above are about the run, not broken credentials."""
    reply = client(world, world.run_credentials).reclaimTask(world.running, "0")
    assert reply["runId"] == 0


@pytest.mark.parametrize("name", sorted(UNSCOPED))
def test_endpoints_without_scopes_answer_anyone(world, name):
    for credentials in (None, CALLERS["expired"][0](world)):  # they never authenticate
        assert isinstance(call(client(world, credentials), name, [], None), dict)


def test_nothing_changed(world):
    """No refused call acted: the tasks are as the root left them."""
    root = world.server.queue()
    assert root.status(world.task)["status"]["state"] == "pending"
    assert "priority" not in root.status(world.task)["status"]  # no refused priority change
    assert [r["state"] for r in root.status(world.running)["status"]["runs"]] == ["running"]
    assert [r["state"] for r in root.status(world.other)["status"]["runs"]] == ["running"]
    assert root.listTaskGroup(world.group)["tasks"]  # the group is still there
    assert root.listArtifacts(world.running, "0")["artifacts"] == []  # no refused createArtifact wrote one
    worker = root.getWorker(*WORKER_PATH)
    assert worker["quarantineDetails"] == [] and worker["quarantineUntil"] < taskcluster.stringDate(
        taskcluster.fromNow("0 seconds"))  # no refused quarantineWorker
    assert worker["expires"] < taskcluster.stringDate(taskcluster.fromNow("1 day 1 hour"))  # nor declareWorker
    assert root.getTaskQueue(QUEUE)["description"] == ""  # nor declareWorkerType
