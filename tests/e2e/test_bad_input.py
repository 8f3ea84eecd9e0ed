"""Bad requests get the documented 4xx answer — never a 500 — and change
nothing: body parsing, schema validation, URL and query validation, routing,
and createTask's own input rules (behaviour spec §1.1-§1.3, §7.13; auth/client
protocol spec §2, §8). Raw requests are Hawk-signed with mohawk."""

import datetime as dt
import json

import mohawk
import pytest
import requests
import taskcluster

from tests.support.server import ROOT_CLIENT_ID, task_definition

API = "/api/queue/v1"
MAX_BODY = 10 * 1024 * 1024


# ------------------------------------------------------------------ helpers

def slug() -> str:
    return taskcluster.slugId()


def at(seconds: float) -> str:
    moment = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def send(server, method: str, path: str, body=None, *, data: bytes | None = None, content_type="application/json",
         signed: bool = True, headers: dict | None = None, api: bool = True) -> requests.Response:
    """One raw request: `body` is JSON-encoded, `data` sent verbatim. Asserts
    the server did not answer 5xx."""
    url = server.root_url + (API if api else "") + path
    has_body = data is not None or body is not None
    if data is None:
        data = b"" if body is None else json.dumps(body).encode()
    all_headers = dict(headers or {})
    if content_type is not None and has_body:
        all_headers["Content-Type"] = content_type
    if signed:
        sender = mohawk.Sender({"id": ROOT_CLIENT_ID, "key": server.token, "algorithm": "sha256"}, url, method,
                               content=data, content_type=all_headers.get("Content-Type", ""))
        all_headers["Authorization"] = sender.request_header
    reply = requests.request(method, url, data=data, headers=all_headers, timeout=60)
    assert reply.status_code < 500, f"{method} {path} -> {reply.status_code}: {reply.text[:1000]}"
    return reply


def error(reply: requests.Response, status: int, code: str) -> dict:
    assert reply.status_code == status, f"{reply.status_code}: {reply.text[:1000]}"
    body = reply.json()
    assert body.get("code") == code, body
    assert set(body) == {"code", "message", "requestInfo"}, body
    return body


def exists(server, task_id: str) -> bool:
    return send(server, "GET", f"/task/{task_id}").status_code == 200


@pytest.fixture
def pending_task(queue, unique_queue):
    task_id = slug()
    queue.createTask(task_id, task_definition(unique_queue))
    return task_id


# ------------------------------------------------------------------ schema validation (§1.2 step 5)

def _definition(**changes):
    base = task_definition("e2e-prov/bad-input")
    for key, value in changes.items():
        if value is _DROP:
            base.pop(key)
        else:
            base[key] = value
    return base


_DROP = object()
META = task_definition()["metadata"]

CREATE_TASK_BAD = {
    "created-number": _definition(created=5),
    "created-not-a-date": _definition(created="yesterday"),
    "payload-array": _definition(payload=["true"]),
    "retries-string": _definition(retries="5"),
    "retries-too-many": _definition(retries=50),
    "retries-negative": _definition(retries=-1),
    "priority-unknown": _definition(priority="urgent"),
    "tags-non-string": _definition(tags={"a": 1}),
    "dependencies-not-array": _definition(dependencies="abc"),
    "dependencies-not-slugids": _definition(dependencies=["not-a-slugid"]),
    "dependencies-duplicate": _definition(dependencies=["VDFR2SK5RVibLaDA00000Q"] * 2),
    "routes-number": _definition(routes=[1]),
    "routes-duplicate": _definition(routes=["a.b", "a.b"]),
    "routes-empty-string": _definition(routes=[""]),
    "scheduler-id-too-long": _definition(schedulerId="s" * 39),
    "scheduler-id-bad-char": _definition(schedulerId="bad/id"),
    "project-id-bad-char": _definition(projectId="bad project"),
    "task-group-id-not-slugid": _definition(taskGroupId="group"),
    "task-queue-id-upper-worker-type": _definition(taskQueueId="e2e-prov/Upper"),
    "task-queue-id-no-slash": _definition(taskQueueId="e2e-prov"),
    "worker-type-number": _definition(workerType=5),
    "scopes-non-ascii": _definition(scopes=["caf\u00e9"]),
    "metadata-name-number": _definition(metadata={**META, "name": 5}),
    "metadata-source-ftp": _definition(metadata={**META, "source": "ftp://example.com/x"}),
    "extra-not-object": _definition(extra=[1]),
    "missing-created": _definition(created=_DROP),
    "missing-deadline": _definition(deadline=_DROP),
    "missing-payload": _definition(payload=_DROP),
    "missing-metadata": _definition(metadata=_DROP),
    "missing-metadata-owner": _definition(metadata={k: v for k, v in META.items() if k != "owner"}),
    "extra-top-level-field": _definition(unexpected=True),
    "extra-metadata-field": _definition(metadata={**META, "unexpected": 1}),
    "json-array": [],
    "empty-object": {},
}


@pytest.mark.parametrize("case", sorted(CREATE_TASK_BAD))
def test_create_task_rejects_bodies_that_violate_the_schema(server, case):
    task_id = slug()
    body = error(send(server, "PUT", f"/task/{task_id}", CREATE_TASK_BAD[case]), 400, "InputValidationError")
    assert "Schema Validation Failed!" in body["message"]
    assert "create-task-request.json" in body["message"]
    assert body["requestInfo"]["method"] == "createTask"
    assert not exists(server, task_id)


OTHER_BAD = [
    ("tasks", "POST", "/tasks", {"taskIds": "abc"}),
    ("tasks", "POST", "/tasks", {"taskIds": [1]}),
    ("tasks", "POST", "/tasks", {"taskIds": [], "unexpected": 1}),
    ("statuses", "POST", "/tasks/status", {"taskIds": {"a": 1}}),
    ("statuses", "POST", "/tasks/status", {"taskIds": [], "unexpected": 1}),
    ("claimWork", "POST", "/claim-work/e2e-prov/bad-input", {"workerGroup": 5, "workerId": "w", "tasks": 1}),
    ("claimWork", "POST", "/claim-work/e2e-prov/bad-input", {"workerGroup": "wg", "workerId": "w", "tasks": "1"}),
    ("claimWork", "POST", "/claim-work/e2e-prov/bad-input", {"workerGroup": "wg", "workerId": "w", "tasks": 0}),
    ("claimWork", "POST", "/claim-work/e2e-prov/bad-input", {"workerGroup": "wg", "workerId": "w", "tasks": 33}),
    ("claimWork", "POST", "/claim-work/e2e-prov/bad-input", {"workerGroup": "wg", "tasks": 1}),
    ("claimWork", "POST", "/claim-work/e2e-prov/bad-input", {"workerId": "w", "tasks": 1}),
    ("claimWork", "POST", "/claim-work/e2e-prov/bad-input", {"workerGroup": "wg", "workerId": "w w"}),
    ("claimWork", "POST", "/claim-work/e2e-prov/bad-input", {"workerGroup": "wg", "workerId": "w" * 39}),
    ("claimWork", "POST", "/claim-work/e2e-prov/bad-input", {"workerGroup": "wg", "workerId": "w", "extra": 1}),
    ("claimTask", "POST", "/task/{task}/runs/0/claim", {"workerGroup": "wg"}),
    ("claimTask", "POST", "/task/{task}/runs/0/claim", {"workerId": "w"}),
    ("claimTask", "POST", "/task/{task}/runs/0/claim", {"workerGroup": 1, "workerId": "w"}),
    ("claimTask", "POST", "/task/{task}/runs/0/claim", {"workerGroup": "", "workerId": "w"}),
    ("claimTask", "POST", "/task/{task}/runs/0/claim", {"workerGroup": "wg", "workerId": "w", "tasks": 1}),
    ("reportException", "POST", "/task/{task}/runs/0/exception", {}),
    ("reportException", "POST", "/task/{task}/runs/0/exception", {"reason": "bogus"}),
    ("reportException", "POST", "/task/{task}/runs/0/exception", {"reason": 5}),
    ("reportException", "POST", "/task/{task}/runs/0/exception", {"reason": "canceled"}),
    ("reportException", "POST", "/task/{task}/runs/0/exception", {"reason": "internal-error", "extra": 1}),
    ("reportException", "POST", "/task/{task}/runs/0/exception", []),
]


@pytest.mark.parametrize("method_name, method, path, payload", OTHER_BAD,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(OTHER_BAD)])
def test_endpoints_reject_bodies_that_violate_their_schema(server, queue, unique_queue, method_name, method, path,
                                                           payload):
    task_id = slug()
    queue.createTask(task_id, task_definition(unique_queue))
    queue.claimTask(task_id, "0", {"workerGroup": "wg", "workerId": "w1"}) if "exception" in path else None
    body = error(send(server, method, path.format(task=task_id), payload), 400, "InputValidationError")
    assert "Schema Validation Failed!" in body["message"]
    assert body["requestInfo"]["method"] == method_name
    expected_state = "running" if "exception" in path else "pending"
    assert queue.status(task_id)["status"]["state"] == expected_state


def test_input_validation_error_names_the_absolute_schema_id(server):
    """§1.3/§8.4: the message names the absolute schema $id (<rootUrl>/schemas/...)."""
    body = error(send(server, "PUT", f"/task/{slug()}", {}), 400, "InputValidationError")
    assert body["message"].startswith(
        f"\nSchema Validation Failed!\nRejecting Schema: {server.root_url}/schemas/queue/v1/create-task-request.json#"
        "\nErrors:\n  * ")


def _not_rfc3339(kind: str) -> str:
    now = dt.datetime.now(dt.timezone.utc)
    return {"no-offset": now.strftime("%Y-%m-%dT%H:%M:%S"),
            "basic-format": now.strftime("%Y%m%dT%H%M%SZ"),
            "week-date": now.strftime("%G-W%V-%uT%H:%M:%SZ"),
            "comma-fraction": now.strftime("%Y-%m-%dT%H:%M:%S,5Z")}[kind]


@pytest.mark.parametrize("kind", ["no-offset", "basic-format", "week-date", "comma-fraction"])
def test_create_task_rejects_date_times_that_are_not_rfc3339(server, kind):
    """`format: date-time` is RFC 3339 (as upstream's ajv checks it), not everything fromisoformat reads."""
    task_id = slug()
    reply = send(server, "PUT", f"/task/{task_id}", _definition(created=_not_rfc3339(kind)))
    error(reply, 400, "InputValidationError")


def test_create_task_with_a_deadline_centuries_ahead_is_400(server, unique_queue):
    """§7.13 step 4: the time checks answer 400 before any default is derived from the deadline."""
    task_id = slug()
    definition = task_definition(unique_queue, deadline="9999-12-31T00:00:00.000Z")
    reply = requests.put(server.root_url + API + f"/task/{task_id}", data=json.dumps(definition), timeout=10,
                         headers=_auth_headers(server, "PUT", f"/task/{task_id}", definition))
    assert reply.status_code == 400, reply.text[:300]
    assert reply.json()["code"] == "InputError"
    assert "`deadline` cannot be more than 5 days" in reply.json()["message"]


def test_create_task_with_the_latest_expires_is_not_a_server_error(server, unique_queue):
    """§7.13 only requires expires >= deadline; the group expiry (expires + 1 h, §6.1) must not overflow."""
    task_id = slug()
    definition = task_definition(unique_queue, expires="9999-12-31T23:59:59.999Z")
    reply = requests.put(server.root_url + API + f"/task/{task_id}", data=json.dumps(definition), timeout=10,
                         headers=_auth_headers(server, "PUT", f"/task/{task_id}", definition))
    assert reply.status_code == 200, reply.text[:300]
    for path in (f"/task/{task_id}", f"/task-group/{task_id}", f"/task-group/{task_id}/list"):
        reply = send(server, "GET", path)
        assert reply.status_code == 200, (path, reply.text[:300])
    group_expires = send(server, "GET", f"/task-group/{task_id}").json()["expires"]
    assert dt.datetime.fromisoformat(group_expires.replace("Z", "+00:00")) >= dt.datetime(
        9999, 12, 31, 23, 59, 59, 999000, tzinfo=dt.timezone.utc)


def _auth_headers(server, method: str, path: str, body) -> dict:
    url = server.root_url + API + path
    data = json.dumps(body).encode()
    sender = mohawk.Sender({"id": ROOT_CLIENT_ID, "key": server.token, "algorithm": "sha256"}, url, method,
                           content=data, content_type="application/json")
    return {"Authorization": sender.request_header, "Content-Type": "application/json"}


def test_create_task_accepts_any_owner_string(server, queue, unique_queue):
    """v64.2.5 task-metadata.json: owner is any string of <= 255 characters (no e-mail format)."""
    task_id = slug()
    status = queue.createTask(task_id, task_definition(unique_queue, metadata={**META, "owner": "e2e automation"}))
    assert status["status"]["state"] == "pending"


def test_create_task_accepts_upstream_metadata_sources(queue, unique_queue):
    for source in ("ssh://git@github.com:taskcluster/taskcluster.git", "git@github.com:taskcluster/taskcluster.git"):
        task_id = slug()
        queue.createTask(task_id, task_definition(unique_queue, metadata={**META, "source": source}))
        assert queue.task(task_id)["metadata"]["source"] == source


def test_integral_floats_in_bodies_come_back_as_integers(server, queue, unique_queue):
    """`3.0` is an integer to JSON schema; echoing `3.0` breaks typed clients (Go tcqueue int64 fields)."""
    task_id = slug()
    data = json.dumps(task_definition(unique_queue)).replace('"metadata"', '"retries": 3.0, "metadata"', 1).encode()
    reply = send(server, "PUT", f"/task/{task_id}", data=data)
    assert reply.status_code == 200, reply.text
    assert '"retriesLeft":3.0' not in reply.text.replace(" ", "")
    assert type(reply.json()["status"]["retriesLeft"]) is int
    assert type(send(server, "GET", f"/task/{task_id}").json()["retries"]) is int


def test_integral_float_task_count_claims_that_many(server, queue, unique_queue):
    for _ in range(3):
        queue.createTask(slug(), task_definition(unique_queue))
    reply = send(server, "POST", f"/claim-work/{unique_queue}",
                 data=b'{"workerGroup": "wg", "workerId": "w1", "tasks": 2.0}')
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["tasks"]) == 2


def test_claim_work_without_tasks_claims_one(server, queue, unique_queue):
    ids = [slug(), slug()]
    for task_id in ids:
        queue.createTask(task_id, task_definition(unique_queue))
    reply = send(server, "POST", f"/claim-work/{unique_queue}", {"workerGroup": "wg", "workerId": "w1"})
    assert reply.status_code == 200, reply.text
    assert [c["status"]["taskId"] for c in reply.json()["tasks"]] == ids[:1]


# ------------------------------------------------------------------ body parsing (§1.1, §1.2 step 1)

BODY_ENDPOINTS = [
    ("createTask", "PUT", "/task/{new}"),
    ("tasks", "POST", "/tasks"),
    ("statuses", "POST", "/tasks/status"),
    ("claimWork", "POST", "/claim-work/e2e-prov/bad-input"),
    ("claimTask", "POST", "/task/{task}/runs/0/claim"),
    ("reportException", "POST", "/task/{task}/runs/0/exception"),
]
IDS = [e[0] for e in BODY_ENDPOINTS]


def _path(template: str, task_id: str) -> str:
    return template.format(new=slug(), task=task_id)


@pytest.mark.parametrize("name, method, template", BODY_ENDPOINTS, ids=IDS)
@pytest.mark.parametrize("data", [b"{bad json", b'{"a": 1,}', b"\xff\xfe\x00", b'{"a": 1} trailing'],
                         ids=["unquoted", "trailing-comma", "not-utf8", "trailing-garbage"])
def test_invalid_json_is_400_malformed_payload(server, pending_task, name, method, template, data):
    body = error(send(server, method, _path(template, pending_task), data=data), 400, "MalformedPayload")
    assert body["message"].startswith("Failed to parse JSON")
    assert body["requestInfo"]["method"] == name and body["requestInfo"]["payload"] == {}


@pytest.mark.parametrize("name, method, template", BODY_ENDPOINTS, ids=IDS)
@pytest.mark.parametrize("data", [b"5", b'"text"', b"true", b"null"], ids=["number", "string", "boolean", "null"])
def test_json_scalar_body_is_400_malformed_payload(server, pending_task, name, method, template, data):
    body = error(send(server, method, _path(template, pending_task), data=data), 400, "MalformedPayload")
    assert body["message"].startswith("Failed to parse JSON")


def test_malformed_body_on_an_endpoint_without_input_is_still_rejected(server, pending_task, queue):
    error(send(server, "POST", f"/task/{pending_task}/cancel", data=b"{oops"), 400, "MalformedPayload")
    error(send(server, "POST", f"/task/{pending_task}/cancel", data=b"42"), 400, "MalformedPayload")
    assert queue.status(pending_task)["status"]["state"] == "pending"


def test_body_parsing_comes_before_authentication(server, pending_task):
    reply = send(server, "POST", f"/task/{pending_task}/runs/0/completed", data=b"{oops", signed=False)
    error(reply, 400, "MalformedPayload")


@pytest.mark.parametrize("name, method, template", BODY_ENDPOINTS, ids=IDS)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_on_an_endpoint_with_input_is_400_malformed_payload(server, pending_task, name, method,
                                                                               template, content_type):
    valid = {"createTask": task_definition("e2e-prov/bad-input"), "tasks": {"taskIds": []},
             "statuses": {"taskIds": []}, "claimWork": {"workerGroup": "wg", "workerId": "w", "tasks": 1},
             "claimTask": {"workerGroup": "wg", "workerId": "w"},
             "reportException": {"reason": "internal-error"}}[name]
    reply = send(server, method, _path(template, pending_task), data=json.dumps(valid).encode(),
                 content_type=content_type)
    body = error(reply, 400, "MalformedPayload")
    assert body["message"].startswith("Payload must be JSON with content-type: application/json got content-type: "
                                      + (content_type or "null"))


def test_json_content_type_with_parameters_is_accepted(server, queue, unique_queue):
    task_id = slug()
    reply = send(server, "PUT", f"/task/{task_id}", task_definition(unique_queue),
                 content_type="application/json; charset=utf-8")
    assert reply.status_code == 200, reply.text
    assert queue.status(task_id)["status"]["state"] == "pending"


def test_empty_json_body_counts_as_an_empty_object(server):
    body = error(send(server, "PUT", f"/task/{slug()}", data=b"", content_type="application/json"),
                 400, "InputValidationError")
    assert body["requestInfo"]["payload"] == {}
    reply = send(server, "POST", "/tasks", data=b"", content_type="application/json")
    assert reply.status_code == 200 and reply.json() == {"tasks": []}


def test_bodies_to_endpoints_without_input_are_ignored(server, queue, unique_queue):
    task_id = slug()
    queue.createTask(task_id, task_definition(unique_queue, dependencies=[task_id]))
    reply = send(server, "POST", f"/task/{task_id}/schedule", {"anything": ["goes"]})
    assert reply.status_code == 200 and reply.json()["status"]["state"] == "pending"
    reply = send(server, "POST", f"/task/{task_id}/rerun", data=b"plain text", content_type="text/plain")
    assert reply.status_code == 200


def test_report_completed_with_success_false_reports_failure(server, queue, unique_queue):
    task_id = slug()
    queue.createTask(task_id, task_definition(unique_queue))
    queue.claimTask(task_id, "0", {"workerGroup": "wg", "workerId": "w1"})
    reply = send(server, "POST", f"/task/{task_id}/runs/0/completed", {"success": False})
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"]["runs"][0]["reasonResolved"] == "failed"


@pytest.mark.parametrize("name, method, template", BODY_ENDPOINTS[:2], ids=IDS[:2])
def test_body_over_10_megabytes_is_413(server, pending_task, name, method, template):
    data = b'{"taskIds": ["' + b"a" * (MAX_BODY + 16) + b'"]}'
    try:
        reply = send(server, method, _path(template, pending_task), data=data)
    except requests.exceptions.ConnectionError as err:  # the server may stop reading early
        pytest.fail(f"connection dropped instead of a 413 reply: {err}")
    assert reply.status_code == 413, reply.text[:500]
    if reply.headers.get("Content-Type", "").startswith("application/json"):
        assert reply.json().get("code") == "InputTooLarge"


def test_body_just_under_the_limit_is_read(server):
    data = b'{"taskIds": ["' + b"a" * (MAX_BODY - 64) + b'"]}'
    reply = send(server, "POST", "/tasks", data=data)
    assert reply.status_code == 200 and reply.json() == {"tasks": []}


# ------------------------------------------------------------------ URL parameters (§1.2 step 3)

TASK_ROUTES = [
    ("task", "GET", "/task/{id}"),
    ("status", "GET", "/task/{id}/status"),
    ("createTask", "PUT", "/task/{id}"),
    ("scheduleTask", "POST", "/task/{id}/schedule"),
    ("rerunTask", "POST", "/task/{id}/rerun"),
    ("cancelTask", "POST", "/task/{id}/cancel"),
    ("claimTask", "POST", "/task/{id}/runs/0/claim"),
    ("reclaimTask", "POST", "/task/{id}/runs/0/reclaim"),
    ("reportCompleted", "POST", "/task/{id}/runs/0/completed"),
    ("reportFailed", "POST", "/task/{id}/runs/0/failed"),
    ("reportException", "POST", "/task/{id}/runs/0/exception"),
    ("listTaskGroup", "GET", "/task-group/{id}/list"),
    ("getTaskGroup", "GET", "/task-group/{id}"),
    ("sealTaskGroup", "POST", "/task-group/{id}/seal"),
    ("cancelTaskGroup", "POST", "/task-group/{id}/cancel"),
]
VALID_BODIES = {"createTask": task_definition("e2e-prov/bad-input"),
                "claimTask": {"workerGroup": "wg", "workerId": "w"}, "reportException": {"reason": "internal-error"}}


@pytest.mark.parametrize("name, method, template", TASK_ROUTES, ids=[r[0] for r in TASK_ROUTES])
@pytest.mark.parametrize("bad_id", ["not-a-slugid", "VDFR2SK5RVibLaDA00000Z", "VDFR2SK5RVibLaDA00000", "a%2Fb"])
def test_malformed_task_or_group_id_is_400_invalid_request_arguments(server, name, method, template, bad_id):
    reply = send(server, method, template.format(id=bad_id), VALID_BODIES.get(name))
    body = error(reply, 400, "InvalidRequestArguments")
    param = "taskGroupId" if "task-group" in template else "taskId"
    assert body["message"].startswith("Invalid URL patterns:\n")
    assert f"URL parameter '{param}' given as '{bad_id.replace('%2F', '/')}' must match regular expression" in \
        body["message"]
    assert body["requestInfo"]["method"] == name


@pytest.mark.parametrize("name, suffix", [("claimTask", "claim"), ("reclaimTask", "reclaim"),
                                          ("reportCompleted", "completed"), ("reportFailed", "failed"),
                                          ("reportException", "exception")])
@pytest.mark.parametrize("run_id", ["x", "-1", "1.5", "0x1"])
def test_malformed_run_id_is_400_invalid_request_arguments(server, pending_task, name, suffix, run_id):
    reply = send(server, "POST", f"/task/{pending_task}/runs/{run_id}/{suffix}", VALID_BODIES.get(name))
    body = error(reply, 400, "InvalidRequestArguments")
    assert f"URL parameter 'runId' given as '{run_id}'" in body["message"]


@pytest.mark.parametrize("path", ["/pending/no-slash", "/task-queues/no-slash/pending", "/task-queues/a%2F/claimed",
                                  "/pending/" + "p" * 39 + "/w", "/pending/p/" + "w" * 39])
def test_malformed_task_queue_id_is_400(server, path):
    # (ids valid for the loose URL pattern but not the schema, e.g. `a/B`, are Quirk Q10: either answer is fine)
    reply = send(server, "GET", path)
    body = error(reply, 400, "InvalidRequestArguments")
    assert "taskQueueId" in body["message"]


def test_task_queue_ids_arrive_percent_encoded_from_the_client(queue, unique_queue):
    # the official client sends `prov%2Fworker`; a raw `/` works as well (behaviour spec §1.1)
    assert queue.pendingTasks(unique_queue)["taskQueueId"] == unique_queue


def test_auto_authorization_comes_before_url_validation(server):
    error(send(server, "GET", "/task/not-a-slugid/status", signed=False), 403, "InsufficientScopes")
    error(send(server, "POST", "/task/not-a-slugid/runs/x/completed", signed=False), 403, "InsufficientScopes")
    # createTask authorizes inside the handler, so validation wins there
    error(send(server, "PUT", "/task/not-a-slugid", task_definition(), signed=False), 400, "InvalidRequestArguments")
    error(send(server, "PUT", f"/task/{slug()}", {"created": 1}, signed=False), 400, "InputValidationError")


# ------------------------------------------------------------------ query strings (§1.2 step 4, §1.5)

@pytest.mark.parametrize("path", ["/task/{task}/status?foo=bar", "/task/{task}?limit=1", "/ping?x=1",
                                  "/task-group/{task}/list?limit=abc", "/task-group/{task}/list?limit=-1",
                                  "/task-group/{task}/list?continuationToken=", "/task-queues/{queue}/pending?x=1",
                                  "/task-queues/{queue}/claimed?limit=1.5", "/pending/{queue}?limit=1"])
def test_unknown_or_malformed_query_parameters_are_400(server, pending_task, unique_queue, path):
    reply = send(server, "GET", path.format(task=pending_task, queue=unique_queue))
    body = error(reply, 400, "InvalidRequestArguments")
    assert "Query-string parameter" in body["message"]


def test_unsupported_query_parameter_message(server, pending_task):
    body = error(send(server, "GET", f"/task/{pending_task}/status?foo=bar"), 400, "InvalidRequestArguments")
    assert body["message"].startswith("Query-string parameter: foo is not supported!")


def test_query_parameters_on_post_endpoints_are_validated_too(server):
    error(send(server, "POST", "/tasks?limit=x", {"taskIds": []}), 400, "InvalidRequestArguments")
    error(send(server, "POST", "/tasks/status?other=1", {"taskIds": []}), 400, "InvalidRequestArguments")


def test_undecodable_continuation_tokens_restart_from_the_beginning(server, queue, unique_queue):
    group_id = slug()
    ids = []
    for _ in range(2):
        task_id = slug()
        queue.createTask(task_id, task_definition(unique_queue, taskGroupId=group_id))
        ids.append(task_id)
    for path, key in ((f"/task-group/{group_id}/list", "tasks"), (f"/task-queues/{unique_queue}/pending", "tasks")):
        reply = send(server, "GET", path + "?continuationToken=%21%21garbage%21%21")
        assert reply.status_code == 200, reply.text
        assert len(reply.json()[key]) == 2
    reply = send(server, "POST", "/tasks?continuationToken=zzz", {"taskIds": ids})
    assert reply.status_code == 200 and len(reply.json()["tasks"]) == 2


def test_forged_offset_token_beyond_64_bits_is_not_a_server_error(server, queue, unique_queue):
    """§1.5: bad tokens restart from the beginning (or at worst are rejected) — never a 500."""
    from hashids import Hashids

    group_id = slug()
    queue.createTask(slug(), task_definition(unique_queue, taskGroupId=group_id))
    for offset in (2 ** 63, 10 ** 30):
        token = Hashids(salt="salt", min_length=10).encode(offset)
        reply = send(server, "GET", f"/task-group/{group_id}/list?continuationToken={token}")
        assert reply.status_code in (200, 400), reply.text


@pytest.mark.parametrize("endpoint", ["pending", "claimed"])
def test_forged_keyset_token_beyond_64_bits_is_not_a_server_error(server, unique_queue, endpoint):
    """§1.5: undecodable or out-of-range keyset tokens restart from the beginning."""
    import base64
    from urllib.parse import quote

    for value in (2 ** 63, -(10 ** 30)):
        token = quote(base64.b64encode(json.dumps([value, "a"]).encode()).decode(), safe="")
        reply = send(server, "GET", f"/task-queues/{unique_queue}/{endpoint}?continuationToken={token}")
        assert reply.status_code == 200, reply.text


def test_limit_above_the_maximum_is_capped(server, queue, unique_queue):
    group_id = slug()
    queue.createTask(slug(), task_definition(unique_queue, taskGroupId=group_id))
    reply = send(server, "GET", f"/task-group/{group_id}/list?limit=99999999999999999999")
    assert reply.status_code == 200 and len(reply.json()["tasks"]) == 1


def test_limit_zero_on_offset_paged_endpoints_is_an_empty_last_page(server, queue, unique_queue):
    """§1.5: limit=0 on offset-paged endpoints is an empty page without a token (else clients loop)."""
    group_id, task_id = slug(), slug()
    queue.createTask(task_id, task_definition(unique_queue, taskGroupId=group_id))
    for method, path, body, key in (("GET", f"/task-group/{group_id}/list?limit=0", None, "tasks"),
                                    ("POST", "/tasks?limit=0", {"taskIds": [task_id]}, "tasks"),
                                    ("POST", "/tasks/status?limit=0", {"taskIds": [task_id]}, "statuses")):
        reply = send(server, method, path, body)
        assert reply.status_code == 200, reply.text
        assert reply.json()[key] == [] and "continuationToken" not in reply.json(), (path, reply.json())


# ------------------------------------------------------------------ routing (§1.1)

@pytest.mark.parametrize("path, api", [("/nope", True), ("/Ping", True), ("/task", True), ("/tasks/extra/x", True),
                                       ("/nope", False), ("/api/queue/v2/ping", False), ("/api/auth/v1/ping", False)])
def test_unknown_route_is_404_not_found(server, path, api):
    for method in ("GET", "POST"):
        reply = send(server, method, path, api=api)
        assert reply.status_code == 404, reply.text
        assert reply.json() == {"error": "Not found"}


@pytest.mark.parametrize("method, path", [("DELETE", "/task/{task}"), ("POST", "/task/{task}"),
                                          ("GET", "/task/{task}/cancel"), ("PUT", "/tasks"),
                                          ("GET", "/claim-work/e2e-prov/bad-input"), ("POST", "/ping"),
                                          ("DELETE", "/task-group/{task}/seal")])
def test_wrong_method_on_a_known_route_is_405(server, pending_task, method, path):
    reply = send(server, method, path.format(task=pending_task))
    assert reply.status_code == 405, reply.text


def test_cors_preflight_is_answered_with_the_cors_headers(server, pending_task):
    """§1.1: browsers see the CORS headers of API responses only if the preflight succeeds."""
    reply = requests.options(server.root_url + API + f"/task/{pending_task}/cancel", timeout=10, headers={
        "Origin": "https://ui.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert 200 <= reply.status_code < 300, reply.status_code
    assert reply.headers.get("Access-Control-Allow-Origin") == "*"
    assert "POST" in reply.headers.get("Access-Control-Allow-Methods", "")
    assert "Authorization" in reply.headers.get("Access-Control-Allow-Headers", "")


def _raw_get(server, path: str):
    """GET with the path exactly as given (requests would normalise escapes)."""
    import http.client

    sender = mohawk.Sender({"id": ROOT_CLIENT_ID, "key": server.token, "algorithm": "sha256"},
                           server.root_url + path, "GET", content=b"", content_type="")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("GET", path, headers={"Authorization": sender.request_header})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def test_path_parameters_are_percent_decoded_and_task_queue_ids_take_raw_or_encoded_slashes(server, pending_task,
                                                                                            queue, unique_queue):
    encoded_id = "%{:02X}".format(ord(pending_task[0])) + pending_task[1:]
    status, body = _raw_get(server, f"{API}/task/{encoded_id}/status")
    assert status == 200 and body["status"]["taskId"] == pending_task
    provisioner, worker_type = unique_queue.split("/")
    for queue_path in (f"{provisioner}%2F{worker_type}", f"{provisioner}/{worker_type}"):
        status, body = _raw_get(server, f"{API}/pending/{queue_path}")
        assert (status, body["taskQueueId"], body["pendingTasks"]) == (200, unique_queue, 1)
        status, body = _raw_get(server, f"{API}/task-queues/{queue_path}/pending")
        assert status == 200 and [t["taskId"] for t in body["tasks"]] == [pending_task]


def test_a_trailing_slash_is_tolerated(server, pending_task):
    assert send(server, "GET", "/ping/").status_code == 200
    reply = send(server, "GET", f"/task/{pending_task}/status/")
    assert reply.status_code == 200 and reply.json()["status"]["taskId"] == pending_task


# ------------------------------------------------------------------ createTask input rules (§7.13)

TIME_RULES = {
    "created-far-in-the-past": (dict(created=-20 * 60, deadline=3600), "`created` cannot be in the past"),
    "created-far-in-the-future": (dict(created=20 * 60, deadline=3600), "`created` cannot be in the future"),
    "created-after-deadline": (dict(created=10 * 60, deadline=5 * 60), None),
    "deadline-in-the-past": (dict(created=-10 * 60, deadline=-5 * 60), "`deadline` cannot be in the past"),
    "deadline-over-5-days": (dict(created=0, deadline=6 * 86400), "`deadline` cannot be more than 5 days"),
    "expires-before-deadline": (dict(created=0, deadline=4 * 86400, expires=3 * 86400),
                                "`expires` cannot be before `deadline`"),
}


@pytest.mark.parametrize("case", sorted(TIME_RULES))
def test_create_task_time_rules_are_400_input_error(server, unique_queue, case):
    times, message = TIME_RULES[case]
    task_id = slug()
    definition = task_definition(unique_queue, **{k: at(v) for k, v in times.items()})
    body = error(send(server, "PUT", f"/task/{task_id}", definition), 400, "InputError")
    if message:
        assert body["message"].startswith(message), body["message"]
    assert not exists(server, task_id)


@pytest.mark.parametrize("times", [dict(created=-5, deadline=5), dict(created=10 * 60, deadline=3600),
                                   dict(created=-14 * 60, deadline=3600), dict(created=0, deadline=5 * 86400 + 600),
                                   dict(created=0, deadline=86400, expires=86400)],
                         ids=["drift-5s", "created-10min-ahead", "created-14min-ago", "deadline-5d-plus-slack",
                              "expires-equals-deadline"])
def test_create_task_time_limits_leave_room_for_drift(server, queue, unique_queue, times):
    task_id = slug()
    definition = task_definition(unique_queue, **{k: at(v) for k, v in times.items()})
    reply = send(server, "PUT", f"/task/{task_id}", definition)
    assert reply.status_code == 200, reply.text
    assert queue.task(task_id)["deadline"] == definition["deadline"]


@pytest.mark.parametrize("scopes", [["abc:**"], ["ok:*", "abc:***"], ["**"]])
def test_task_scopes_ending_in_double_star_are_400_input_error(server, unique_queue, scopes):
    task_id = slug()
    body = error(send(server, "PUT", f"/task/{task_id}", task_definition(unique_queue, scopes=scopes)),
                 400, "InputError")
    assert "scopes must not end with `**`" in body["message"]
    assert not exists(server, task_id)


def test_task_queue_identity_rules(server, queue, unique_queue):
    provisioner, worker_type = unique_queue.split("/")
    mismatch = task_definition(unique_queue, provisionerId=provisioner, workerType="other-type")
    body = error(send(server, "PUT", f"/task/{slug()}", mismatch), 400, "InputError")
    assert 'taskQueueId must match "provisionerId/workerType"' in body["message"]

    for partial in ({"provisionerId": provisioner}, {"workerType": worker_type}, {}):
        definition = task_definition(**partial)
        definition.pop("taskQueueId")
        body = error(send(server, "PUT", f"/task/{slug()}", definition), 400, "InputError")
        assert "at least a provisionerId and a workerType or a taskQueueId must be provided" in body["message"]

    task_id = slug()  # a lone provisionerId is overridden by taskQueueId
    reply = send(server, "PUT", f"/task/{task_id}", task_definition(unique_queue, provisionerId="something-else"))
    assert reply.status_code == 200, reply.text
    assert queue.task(task_id)["provisionerId"] == provisioner


def test_create_task_checks_queue_identity_then_scopes_then_times(server, unique_queue):
    now = dt.datetime.now(dt.timezone.utc)
    issued = taskcluster.createTemporaryCredentials(ROOT_CLIENT_ID, server.token, now - dt.timedelta(minutes=1),
                                                    now + dt.timedelta(hours=1), [])
    nobody = taskcluster.Queue(server.options({k: v.decode() if isinstance(v, bytes) else v
                                               for k, v in issued.items()}))
    provisioner, _ = unique_queue.split("/")
    mismatch = task_definition(unique_queue, provisionerId=provisioner, workerType="other")
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as info:
        nobody.createTask(slug(), mismatch)
    assert (info.value.status_code, info.value.body["code"]) == (400, "InputError")
    past = task_definition(unique_queue, created=at(-3600), deadline=at(-1800), scopes=["abc:**"])
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as info:
        nobody.createTask(slug(), past)
    assert (info.value.status_code, info.value.body["code"]) == (403, "InsufficientScopes")
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as info:
        server.queue().createTask(slug(), past)  # times are checked before the `**` rule
    assert (info.value.status_code, info.value.body["code"]) == (400, "InputError")
    assert "`created` cannot be in the past" in info.value.body["message"]


# ------------------------------------------------------------------ never a 500

ALL_ROUTES = [
    ("GET", "/ping"), ("GET", "/__heartbeat__"), ("GET", "/__lbheartbeat__"), ("GET", "/__version__"),
    ("GET", "/task/{task}"), ("GET", "/task/{task}/status"), ("POST", "/tasks"), ("POST", "/tasks/status"),
    ("PUT", "/task/{new}"), ("POST", "/task/{task}/schedule"), ("POST", "/task/{task}/rerun"),
    ("POST", "/task/{task}/cancel"), ("POST", "/claim-work/{queue}"), ("POST", "/task/{task}/runs/0/claim"),
    ("POST", "/task/{task}/runs/0/reclaim"), ("POST", "/task/{task}/runs/0/completed"),
    ("POST", "/task/{task}/runs/0/failed"), ("POST", "/task/{task}/runs/0/exception"),
    ("GET", "/task-group/{task}"), ("GET", "/task-group/{task}/list"), ("POST", "/task-group/{task}/seal"),
    ("POST", "/task-group/{task}/cancel"), ("GET", "/pending/{queue}"), ("GET", "/task-queues/{queue}/pending"),
    ("GET", "/task-queues/{queue}/claimed"),
]
GARBAGE = {
    "scalar": dict(data=b"0"),
    "nested-nonsense": dict(body={"taskIds": [None, {"a": []}], "workerGroup": ["x"], "reason": {"r": 1},
                                  "created": {"$date": 1}, "tasks": 1e300}),
    "deep-array": dict(data=b"[" * 5000 + b"]" * 5000),
    "control-chars": dict(body={"workerGroup": "\u0000", "workerId": "\ud7ff", "taskIds": ["\u0000"]}),
    "huge-numbers": dict(body={"tasks": 10 ** 40, "retries": 10 ** 40, "taskIds": []}),
    "unknown-query": dict(query="?zzz=1"),
    "long-query": dict(query="?limit=" + "9" * 2000),
}


@pytest.mark.parametrize("method, template", ALL_ROUTES, ids=[f"{m}{p}" for m, p in ALL_ROUTES])
def test_no_endpoint_answers_garbage_with_a_500(server, pending_task, unique_queue, method, template):
    path = template.format(task=pending_task, new=slug(), queue=unique_queue)
    for case, request in GARBAGE.items():
        reply = send(server, method, path + request.get("query", ""), request.get("body"), data=request.get("data"))
        assert reply.status_code < 500, (case, reply.text[:500])
        if reply.status_code >= 400:
            assert reply.json().get("code") or reply.json() == {"error": "Not found"}, (case, reply.text[:500])


@pytest.mark.parametrize("path", ["/tasks", "/tasks/status"])
def test_task_ids_with_control_characters_match_nothing(server, pending_task, path):
    """§7.5: ids are not pattern-checked; non-slugids (even with NUL, on PostgreSQL too) match nothing."""
    reply = send(server, "POST", path, {"taskIds": ["\u0000", "a\u0000b", "\u001f", pending_task]})
    key = "tasks" if path == "/tasks" else "statuses"
    assert reply.status_code == 200 and [e["taskId"] for e in reply.json()[key]] == [pending_task]


@pytest.mark.parametrize("path", ["/task/%E2%9C%93/status", "/task/%ZZ", "/task/%00%00/status",
                                  "/task-group/" + "A" * 5000, "/claim-work/a%2Fb", "/pending/a%2F%2Fb",
                                  "/task-queues/%2F/pending", "/task/" + slug() + "/runs/99999999999999999999/claim"])
def test_odd_paths_never_answer_500(server, path):
    for method in ("GET", "POST", "PUT"):
        body = {"workerGroup": "wg", "workerId": "w"} if method == "POST" else None
        send(server, method, path, body)


# ------------------------------------------------------------------ no 500s: depth, sizes, dates, raw HTTP

def nested_object(levels: int):
    """An object nested `levels` levels deep."""
    value = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def test_a_body_nested_up_to_100_levels_is_accepted_and_served_everywhere(server, queue, unique_queue):
    task_id = slug()
    payload = nested_object(99)  # the body, one level up, is nested 100 levels
    queue.createTask(task_id, task_definition(unique_queue, payload=payload))
    assert queue.task(task_id)["payload"] == payload
    assert queue.tasks({"taskIds": [task_id]})["tasks"][0]["task"]["payload"] == payload
    assert queue.listTaskGroup(task_id)["tasks"][0]["task"]["payload"] == payload
    assert queue.listPendingTasks(unique_queue)["tasks"][0]["task"]["payload"] == payload
    claimed = queue.claimWork(unique_queue, {"workerGroup": "wg", "workerId": "w", "tasks": 1})["tasks"]
    assert [t["task"]["payload"] for t in claimed] == [payload]


def nested_text(levels: int) -> str:
    """nested_object(levels) as JSON text (the json module stops near 1,000 levels)."""
    return '{"a":' * levels + "1" + "}" * levels


@pytest.mark.parametrize("levels", [101, 254, 300, 1024])
def test_a_body_nested_deeper_than_100_levels_is_400_malformed_payload(server, unique_queue, levels):
    task_id = slug()
    data = json.dumps(task_definition(unique_queue, payload="@")).replace('"@"', nested_text(levels - 1)).encode()
    body = error(send(server, "PUT", f"/task/{task_id}", data=data), 400, "MalformedPayload")
    assert "nested deeper than 100 levels" in body["message"]
    assert body["requestInfo"]["payload"] == {}
    assert not exists(server, task_id)


@pytest.mark.parametrize("method, template", ALL_ROUTES, ids=[f"{m}{p}" for m, p in ALL_ROUTES])
def test_a_body_nested_254_levels_is_400_on_every_route_signed_or_not(server, pending_task, unique_queue, method,
                                                                       template):
    """Before the limit, error replies (401/403/404...) carried the body in requestInfo and answered 500."""
    path = template.format(task=pending_task, new=slug(), queue=unique_queue)
    for signed in (True, False):
        error(send(server, method, path, nested_object(254), signed=signed), 400, "MalformedPayload")


def test_a_body_that_does_not_follow_its_content_encoding_is_400(server):
    reply = send(server, "POST", "/tasks", data=b"not gzip at all", headers={"Content-Encoding": "gzip"})
    assert "content-encoding" in error(reply, 400, "MalformedPayload")["message"].lower()


LAST_INSTANT_PLUS = "9999-12-31T23:59:59.999-01:00"  # year 10000 in UTC


@pytest.mark.parametrize("field", ["expires", "deadline", "created"])
def test_a_date_past_year_9999_is_400_input_error(server, unique_queue, field):
    task_id = slug()
    reply = send(server, "PUT", f"/task/{task_id}", task_definition(unique_queue, **{field: LAST_INSTANT_PLUS}))
    error(reply, 400, "InputError")
    assert not exists(server, task_id)


@pytest.mark.parametrize("path", ["/task-group/{task}/list", "/task-queues/{queue}/pending",
                                  "/task-queues/{queue}/claimed", "/task/{task}/dependents"])
def test_a_limit_of_thousands_of_digits_is_the_maximum_page(server, queue, unique_queue, pending_task, path):
    """Upstream caps parseInt(limit) at 1000 whatever its length; Python's int() stops at 4300 digits."""
    for limit in ("9" * 5000, "0" * 5000 + "1"):
        reply = send(server, "GET", path.format(task=pending_task, queue=unique_queue) + "?limit=" + limit)
        assert reply.status_code == 200, reply.text[:300]
    reply = send(server, "POST", "/tasks?limit=" + "0" * 5000 + "1", {"taskIds": [pending_task]})
    assert [t["taskId"] for t in reply.json()["tasks"]] == [pending_task]


@pytest.mark.parametrize("path, key", [("/tasks", "tasks"), ("/tasks/status", "statuses")])
def test_more_task_ids_than_a_query_can_bind_are_looked_up(server, pending_task, path, key):
    """PostgreSQL binds at most 65,535 parameters per statement, SQLite 32,766."""
    task_ids = [slug() for _ in range(70_000)] + [pending_task]
    reply = send(server, "POST", path, {"taskIds": task_ids})
    assert reply.status_code == 200, reply.text[:300]
    assert [entry["taskId"] for entry in reply.json()[key]] == [pending_task]


@pytest.mark.parametrize("suffix", ["%0A", "%0D%0A"])
def test_an_id_followed_by_a_newline_does_not_match_the_id_pattern(server, unique_queue, suffix):
    """Upstream tests patterns with JavaScript's RegExp, where `$` is the end of the string."""
    task_id = slug()
    reply = send(server, "PUT", f"/task/{task_id}{suffix}", task_definition(unique_queue))
    error(reply, 400, "InvalidRequestArguments")
    error(send(server, "GET", "/task-group/" + task_id + "/list?limit=1%0A"), 400, "InvalidRequestArguments")
    assert not exists(server, task_id)


def raw_exchange(server, request: bytes) -> tuple[int, dict]:
    """Send bytes as they are (no client would) and read the status and JSON body."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(server.root_url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as conn:
        conn.sendall(request)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"application/json" in head.lower(), head
    return status, json.loads(body)


UNPARSABLE = {
    "request-line-over-8KB": b"GET /api/queue/v1/task/" + b"A" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "header-over-8KB": b"GET /api/queue/v1/ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
    "undecodable-path": b"GET /api/queue/v1/task/\xff\xfe/status HTTP/1.1\r\nHost: x\r\n\r\n",
    "control-char-in-path": b"GET /api/queue/v1/task/\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
    "space-in-path": b"GET /api/queue/v1/task/a b HTTP/1.1\r\nHost: x\r\n\r\n",
    "unknown-method": b"FETCH /api/queue/v1/ping HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad-http-version": b"GET /api/queue/v1/ping HTTP/9.9\r\nHost: x\r\n\r\n",
    "bad-content-length": b"POST /api/queue/v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "bad-chunk-size": b"POST /api/queue/v1/tasks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                      b"Content-Type: application/json\r\n\r\nzz\r\n",
}


@pytest.mark.parametrize("case", sorted(UNPARSABLE))
def test_requests_the_http_parser_refuses_get_a_json_4xx(server, case):
    status, body = raw_exchange(server, UNPARSABLE[case])
    assert 400 <= status < 500
    assert body["code"] == "InvalidRequestArguments" and "could not be parsed" in body["message"]
    assert set(body) == {"code", "message", "requestInfo"}
    assert send(server, "GET", "/ping").json()["alive"] is True


def test_an_unknown_expectation_is_417_in_json_and_100_continue_still_works(server):
    status, body = raw_exchange(server, b"POST /api/queue/v1/tasks HTTP/1.1\r\nHost: x\r\nExpect: 100-banana\r\n"
                                        b"Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n"
                                        b"\r\n{}")
    assert status == 417 and body["code"] == "InvalidRequestArguments"
    reply = send(server, "POST", "/tasks", {"taskIds": []}, headers={"Expect": "100-continue"})
    assert reply.status_code == 200 and reply.json() == {"tasks": []}


def test_nul_and_other_odd_characters_in_a_task_never_get_a_500(server, queue, unique_queue):
    """PostgreSQL text and jsonb refuse NUL; JSON carries it escaped, so it must round-trip."""
    task_id = slug()
    odd = "a\u0000b\u202e\ud7ff\U0001f600"
    definition = task_definition(unique_queue, routes=[odd], tags={odd: odd}, payload={odd: [odd]}, extra={"x": odd},
                                 metadata={**META, "name": odd, "description": odd})
    reply = send(server, "PUT", f"/task/{task_id}", definition)
    assert reply.status_code == 200, reply.text[:300]
    stored = queue.task(task_id)
    assert (stored["routes"], stored["payload"], stored["metadata"]["name"]) == ([odd], {odd: [odd]}, odd)
    assert queue.listTaskGroup(task_id)["tasks"][0]["task"]["tags"] == {odd: odd}
