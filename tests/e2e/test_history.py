"""What happened, end to end on the real server: the README's example leaves
a history naming the clients that created, claimed and completed the task;
the history API (task, status as of, group pages, log, reference) and its
scopes; the `taskjournal history | status | export | audit` commands."""

import json
import sqlite3
import subprocess
import sys
import time
import uuid

import pytest
import requests
import taskcluster

from taskjournal.services.api_gateway.app import ISSUER_ID
from taskjournal.shared.domain.time import format_ms, parse_ms
from tests.e2e.test_endpoints import check
from tests.e2e.test_journal_api import get
from tests.support.server import ROOT_CLIENT_ID, Server, task_definition

HISTORY_SCOPES = "journal:task-history:*"


def readme_example(server, queue) -> tuple[str, dict]:
    """The README's short example: root creates and claims, the worker's
    temporary credentials complete. Returns the taskId and the claim."""
    task_queue_id = f"my-provisioner/w{uuid.uuid4().hex[:8]}"
    task_id = taskcluster.slugId()
    queue.createTask(task_id, task_definition(task_queue_id))
    claim = queue.claimWork(task_queue_id, {"workerGroup": "laptop", "workerId": "w1", "tasks": 1})["tasks"][0]
    worker = taskcluster.Queue({"rootUrl": server.root_url, "credentials": claim["credentials"], "maxRetries": 0})
    worker.reportCompleted(task_id, str(claim["runId"]))
    return task_id, claim


def taskjournal(server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-P", "-m", "taskjournal.services.cli", *args], env=server.env,
                          capture_output=True, text=True, timeout=120)


def test_the_readme_example_leaves_a_history_of_who_did_what(server, queue):
    task_id, claim = readme_example(server, queue)
    reply = get(server, f"/task/{task_id}/history")
    assert reply.status_code == 200
    body = check_history(reply.json())
    worker = client_id(claim)
    assert [(e["event"], e["runId"], e["actor"]["clientId"]) for e in body["events"]] == [
        ("Task.Defined", None, ROOT_CLIENT_ID), ("Task.RunAdded", 0, ROOT_CLIENT_ID),
        ("Task.RunClaimed", 0, ROOT_CLIENT_ID), ("Task.RunResolved", 0, worker)]
    assert body["events"][-1]["actor"]["issuer"] == ISSUER_ID and body["events"][-1]["reason"] == "completed"
    assert all(uuid.UUID(e["actor"]["requestId"]) for e in body["events"])


def client_id(claim: dict) -> str:
    """The worker's temporary clientId (the official client may hand it back as bytes)."""
    found = claim["credentials"]["clientId"]
    return found.decode() if isinstance(found, bytes) else found


def check_history(body: dict) -> dict:
    import jsonschema

    from tests.unit.test_journal_reference import SCHEMA_DIR

    jsonschema.validate(body, json.loads((SCHEMA_DIR / "journal-history-response.json").read_text()))
    return body


def test_status_as_of_a_past_time_has_upstreams_shape(server, queue):
    task_id, _ = readme_example(server, queue)
    events = get(server, f"/task/{task_id}/history").json()["events"]
    claimed = next(e for e in events if e["event"] == "Task.RunClaimed")
    then = get(server, f"/task/{task_id}/status?asOf={claimed['time']}").json()
    assert check("task-status-response.json", then)["status"]["state"] == "running"
    now = get(server, f"/task/{task_id}/status?asOf={format_ms(int(time.time() * 1000))}").json()
    assert now == queue.status(task_id)
    before = format_ms(parse_ms(events[0]["time"]) - 1)
    assert get(server, f"/task/{task_id}/status?asOf={before}").status_code == 404
    assert get(server, f"/task/{task_id}/status").status_code == 400
    assert get(server, f"/task/{task_id}/status?asOf=yesterday").json()["code"] == "InvalidRequestArguments"


def test_a_groups_history_comes_in_pages(server, queue):
    group = taskcluster.slugId()
    ids = [taskcluster.slugId() for _ in range(3)]
    for task_id in ids:
        queue.createTask(task_id, task_definition(taskGroupId=group))
    seen, token = [], None
    while True:
        page = get(server, f"/task-group/{group}/history?limit=2"
                           + (f"&continuationToken={token}" if token else "")).json()
        assert len(page["events"]) <= 2
        seen += page["events"]
        token = page.get("continuationToken")
        if token is None:
            break
    assert [e["event"] for e in seen] == ["TaskGroup.Defined"] + ["Task.Defined", "Task.RunAdded"] * 3
    assert get(server, f"/task-group/{taskcluster.slugId()}/history").status_code == 404
    assert get(server, f"/task-group/{group}/history?continuationToken=abc").status_code == 400


def test_the_log_streams_after_a_position(server, queue):
    readme_example(server, queue)
    first = get(server, "/log?limit=3").json()
    assert len(first["events"]) == 3 and first["lastPosition"] == first["events"][-1]["position"]
    # page on after each answer's lastPosition until nothing is left (the resolvers may still append meanwhile)
    positions, after = [e["position"] for e in first["events"]], first["lastPosition"]
    while (page := get(server, f"/log?after={after}&limit=2").json())["events"]:
        assert page["events"][0]["position"] > after
        positions += [e["position"] for e in page["events"]]
        after = page["lastPosition"]
    assert page == {"events": [], "lastPosition": after}  # the end: nothing after, and the position stays
    assert positions == sorted(set(positions))
    whole = [e["position"] for e in get(server, "/log?limit=1000").json()["events"]]
    assert whole[:len(positions)] == positions


def test_the_reference_is_served_to_anyone(server):
    reply = get(server, "/references/api.json", credentials={})
    assert reply.status_code == 200
    names = {e["name"] for e in reply.json()["entries"]}
    assert {"taskHistory", "taskStatusAsOf", "taskGroupHistory", "log", "queuePosition"} <= names
    # every output schema the reference names is served at that path, as the file the tests validate with
    outputs = {e["output"].removesuffix("#") for e in reply.json()["entries"] if "output" in e}
    assert outputs
    for output in outputs:
        served = requests.get(server.root_url + output)
        assert served.status_code == 200 and served.json()["$id"] == output + "#"
    assert requests.get(server.root_url + "/schemas/journal/v1/nothing.json").status_code == 404


def test_history_needs_its_scopes(server, queue):
    task_id, claim = readme_example(server, queue)
    group = queue.task(task_id)["taskGroupId"]
    paths = [f"/task/{task_id}/history", f"/task/{task_id}/status?asOf=2030-01-01T00:00:00.000Z",
             f"/task-group/{group}/history", "/log"]
    for path in paths:
        refused = get(server, path, credentials={})  # the test server's anonymous role has no scopes
        assert refused.status_code == 403 and refused.json()["code"] == "InsufficientScopes", path
    worker = claim["credentials"]  # scopes for its own run only
    assert get(server, paths[0], credentials=worker).status_code == 403


@pytest.fixture(scope="module")
def public_history(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("tj-public"), None, TASKJOURNAL_ANONYMOUS_SCOPES=HISTORY_SCOPES)
    yield srv
    srv.stop()


def test_anonymous_scopes_may_grant_a_tasks_history(public_history):
    task_id, _ = readme_example(public_history, public_history.queue())
    group = public_history.queue().task(task_id)["taskGroupId"]
    assert get(public_history, f"/task/{task_id}/history", credentials={}).status_code == 200
    assert get(public_history, f"/task/{task_id}/status?asOf=2030-01-01T00:00:00.000Z",
               credentials={}).status_code == 200
    assert get(public_history, f"/task-group/{group}/history", credentials={}).status_code == 403
    assert get(public_history, "/log", credentials={}).status_code == 403


def test_the_commands_show_history_status_and_the_log(server, queue):
    task_id, claim = readme_example(server, queue)
    shown = taskjournal(server, "history", task_id)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert [line.split()[2] for line in lines] == ["Task.Defined", "Task.RunAdded", "Task.RunClaimed",
                                                   "Task.RunResolved"]
    assert f"by {ROOT_CLIENT_ID}" in lines[2] and f"by {client_id(claim)} via {ISSUER_ID}" in lines[3]
    claimed_at = lines[2].split()[1]
    status = taskjournal(server, "status", task_id, "--as-of", claimed_at)
    assert status.returncode == 0 and check("task-status-response.json", json.loads(status.stdout))["status"][
        "state"] == "running"
    everything = [json.loads(line) for line in taskjournal(server, "export").stdout.splitlines()]
    assert [e["position"] for e in everything] == list(range(1, len(everything) + 1))
    since = [json.loads(line) for line in taskjournal(server, "export", "--since", claimed_at).stdout.splitlines()]
    assert since and all(e["time"] >= claimed_at for e in since) and len(since) < len(everything)
    after = taskjournal(server, "export", "--since", str(everything[-2]["position"])).stdout.splitlines()
    assert [json.loads(line)["position"] for line in after] == [everything[-1]["position"]]
    assert taskjournal(server, "history", taskcluster.slugId()).returncode == 1
    assert taskjournal(server, "status", task_id, "--as-of", "soon").returncode == 2


def test_audit_passes_then_catches_a_corrupted_read_model(tmp_path):
    srv = Server(tmp_path, None)
    try:
        task_id, _ = readme_example(srv, srv.queue())
    finally:
        srv.stop()
    clean = taskjournal(srv, "audit")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "ok: every invariant holds" in clean.stdout and "audit [" in clean.stderr
    with sqlite3.connect(tmp_path / "taskjournal.sqlite") as db:
        db.execute("UPDATE tj_tasks SET state = 'failed' WHERE task_id = ?", (task_id,))
    corrupted = taskjournal(srv, "audit")
    assert corrupted.returncode == 1 and "READ MODEL tasks differs" in corrupted.stdout
