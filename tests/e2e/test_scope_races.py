"""Authorization decided on the state the command acts on: requests of a
caller without the task's scopes race the createTask of the same taskId and
must never act on the task (403 once it exists, 404 before; never 200).

Before the fix the gateway loaded the task, skipped authorization when it did
not exist yet, and then ran the command, which loaded the task again - by then
created - and acted on it for an anonymous caller."""

import datetime as dt
import threading

import pytest
import taskcluster
from taskcluster.exceptions import TaskclusterAuthFailure, TaskclusterRestFailure

from tests.support.server import ROOT_CLIENT_ID, task_definition

ROUNDS = 25
CALLERS = 3  # concurrent unauthorized callers per round


def wrong_scopes(server) -> dict:
    """Temporary credentials that hold every scope but the ones these endpoints need."""
    now = dt.datetime.now(dt.timezone.utc)
    issued = taskcluster.createTemporaryCredentials(
        ROOT_CLIENT_ID, server.token, now - dt.timedelta(minutes=1), now + dt.timedelta(hours=1),
        ["queue:get-task:*", "queue:claim-task:elsewhere/*", "queue:schedule-task:other/*",
         "queue:rerun-task-in-project:other", "queue:cancel-task:other/*", "queue:worker-id:*"])
    return {key: value.decode() if isinstance(value, bytes) else value
            for key, value in issued.items() if key in ("clientId", "accessToken", "certificate")}


def attempt(queue, endpoint: str, task_id: str):
    if endpoint == "claimTask":
        return queue.claimTask(task_id, "0", {"workerGroup": "intruders", "workerId": "anon"})
    return getattr(queue, endpoint)(task_id)


def race(server, endpoint: str, definition: dict, task_id: str, intruders: list) -> list:
    """createTask with root credentials while unauthorized callers repeat
    `endpoint` on the same taskId until a little after the task exists.
    Returns every outcome of the unauthorized calls."""
    created = threading.Event()
    start = threading.Barrier(len(intruders) + 1)
    outcomes: list = []

    def intrude(queue):
        start.wait()
        after = 0
        while after < 2:  # keep going until two calls saw the task created
            after += created.is_set()
            try:
                outcomes.append(("ok", attempt(queue, endpoint, task_id)))
            except (TaskclusterRestFailure, TaskclusterAuthFailure) as err:
                outcomes.append((err.status_code, err.body))

    threads = [threading.Thread(target=intrude, args=(q,)) for q in intruders]
    for t in threads:
        t.start()
    start.wait()
    try:
        server.queue().createTask(task_id, definition)
    finally:
        created.set()
        for t in threads:
            t.join(30)
    return outcomes


def assert_refused(outcomes: list, endpoint: str) -> None:
    for status, body in outcomes:
        assert status in (403, 404), (endpoint, status, body)
        code = {403: "InsufficientScopes", 404: "ResourceNotFound"}[status]
        assert body["code"] == code and body["requestInfo"]["method"] == endpoint, body
        assert "message" in body


# endpoint -> (does the task depend on itself (stays unscheduled), expected state afterwards)
CASES = {
    "claimTask": (False, "pending"),
    "cancelTask": (False, "pending"),
    "scheduleTask": (True, "unscheduled"),
    "rerunTask": (True, "unscheduled"),
}


@pytest.mark.parametrize("endpoint", sorted(CASES))
def test_unauthorized_callers_racing_create_task_never_act(server, unique_queue, endpoint):
    self_dependent, expected = CASES[endpoint]
    intruders = [server.anonymous_queue() if i % 2 == 0 else server.queue(wrong_scopes(server))
                 for i in range(CALLERS)]
    for _ in range(ROUNDS):
        task_id = taskcluster.slugId()
        definition = task_definition(unique_queue, dependencies=[task_id] if self_dependent else [])
        outcomes = race(server, endpoint, definition, task_id, intruders)
        assert_refused(outcomes, endpoint)
        status = server.queue().status(task_id)["status"]
        assert status["state"] == expected, (endpoint, status)
        assert all(run["state"] == "pending" for run in status["runs"]), status
