"""The ten artifact endpoints against the real `taskjournal dev` process,
driven by the official Python client as a worker and its consumers use them
(behaviour spec §8)."""

import datetime as dt
import json
import time

import pytest
import requests
import taskcluster
from taskcluster.exceptions import TaskclusterRestFailure

from tests.support.amqp import RouteSubscriber
from tests.support.server import Server, task_definition

WORKER = {"workerGroup": "art-group", "workerId": "art-worker"}


class ArtifactServer(Server):
    """`taskjournal dev` whose anonymous callers may read public artifacts."""

    def __init__(self, data_dir, database_url, **env):
        super().__init__(data_dir, database_url, TASKJOURNAL_ANONYMOUS_SCOPES="queue:get-artifact:public/*", **env)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request, tmp_path_factory):
    database_url = request.getfixturevalue("module_postgres_url") if request.param == "postgres" else None
    srv = ArtifactServer(tmp_path_factory.mktemp("tj-art"), database_url)
    yield srv
    srv.stop()


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def in_(delta: str) -> str:
    return taskcluster.stringDate(taskcluster.fromNow(delta))


class Run:
    """A task claimed with claimWork: the worker's queue holds the run credentials."""

    def __init__(self, server: Server, **task_fields):
        root = server.queue()
        queue_id = f"art-prov/w{taskcluster.slugId()[:8].lower().replace('-', 'a').replace('_', 'b')}"
        self.task_id = taskcluster.slugId()
        root.createTask(self.task_id, task_definition(queue_id, **task_fields))
        claim, = root.claimWork(queue_id, {**WORKER, "tasks": 1})["tasks"]
        self.credentials = claim["credentials"]
        self.worker = server.queue(claim["credentials"])
        self.root = root
        self.server = server

    def create(self, name: str, **body) -> dict:
        body.setdefault("expires", in_("1 day"))
        return self.worker.createArtifact(self.task_id, "0", name, body)


def refused(call, *args, **kwargs) -> tuple[int, dict]:
    with pytest.raises(TaskclusterRestFailure) as info:
        call(*args, **kwargs)
    return info.value.status_code, info.value.body


def raw_get(queue: taskcluster.Queue, method: str, *args) -> requests.Response:
    """The HTTP answer itself (status, headers), without following redirects."""
    return requests.get(queue.buildSignedUrl(method, *args), allow_redirects=False, timeout=10)


REFERENCE = {"storageType": "reference", "url": "https://example.com/x", "contentType": "text/html"}
ERROR = {"storageType": "error", "reason": "file-missing-on-worker", "message": "no such file"}


# ---------------------------------------------------------------- creating, with run credentials
def test_a_worker_creates_artifacts_of_every_type_with_its_run_credentials(server):
    run = Run(server)
    assert run.create("public/ref", **REFERENCE) == {"storageType": "reference"}
    assert run.create("public/link", storageType="link", artifact="public/ref") == {"storageType": "link"}
    assert run.create("public/err", **ERROR) == {"storageType": "error"}
    s3 = run.create("public/logs/live.log", storageType="s3", contentType="text/plain")
    assert s3["storageType"] == "s3" and s3["contentType"] == "text/plain" and s3["putUrl"].startswith("http")
    put_expires = parse_time(s3["expires"])
    assert dt.timedelta(minutes=44) < put_expires - dt.datetime.now(dt.timezone.utc) <= dt.timedelta(minutes=45)
    expires = in_("2 days")
    obj = run.create("private/obj", storageType="object", contentType="application/json", expires=expires)
    assert obj["name"] == f"t/{run.task_id}/0/private/obj" and obj["projectId"] == "none"
    assert abs(parse_time(obj["expires"]) - parse_time(expires)) < dt.timedelta(milliseconds=1)
    cert = json.loads(obj["credentials"]["certificate"])
    assert cert["scopes"] == [f"object:upload:none:t/{run.task_id}/0/private/obj"]
    assert obj["credentials"]["clientId"] == f"artifact-upload/{run.task_id}/0/on/art-group/art-worker"
    listed = run.root.listArtifacts(run.task_id, "0")["artifacts"]
    assert [a["name"] for a in listed] == ["private/obj", "public/err", "public/link", "public/logs/live.log",
                                           "public/ref"]  # unfinished object artifacts are listed too
    assert {a["name"]: a["storageType"] for a in listed}["public/link"] == "link"
    assert refused(run.root.artifactInfo, run.task_id, "0", "private/obj")[0] == 404  # not present yet


def test_another_runs_credentials_cannot_create_its_artifacts(server):
    run, other = Run(server), Run(server)
    status, body = refused(other.worker.createArtifact, run.task_id, "0", "public/x",
                           {**REFERENCE, "expires": in_("1 day")})
    assert status == 403 and body["code"] == "InsufficientScopes"
    assert f"queue:create-artifact:{run.task_id}/0" in body["message"]
    assert run.root.listArtifacts(run.task_id, "0")["artifacts"] == []


@pytest.mark.parametrize("name, why", [("public/../x", "`..`"), ("a/..", "`..`"), ("a" * 1100, "at most")])
def test_names_that_could_escape_are_refused(server, name, why):
    status, body = refused(Run(server).create, name, **REFERENCE)
    assert (status, body["code"]) == (400, "InputError") and why in body["message"]


def test_bad_requests_are_refused_in_taskclusters_format(server):
    run = Run(server)
    cases = [
        ({"storageType": "azure", "contentType": "x", "expires": in_("1 day")}, 400, "InputValidationError"),
        ({**REFERENCE, "expires": in_("2 years")}, 400, "InputError"),  # after the task's expires
        ({**REFERENCE, "expires": in_("-1 hour")}, 400, "InputError"),
    ]
    for body, status, code in cases:
        got, error = refused(run.worker.createArtifact, run.task_id, "0", "public/bad", body)
        assert (got, error["code"]) == (status, code), error
        assert error["requestInfo"]["method"] == "createArtifact"
    assert run.root.listArtifacts(run.task_id, "0")["artifacts"] == []  # nothing half-written


def test_task_and_run_must_exist_and_be_claimed(server):
    root = server.queue()
    body = {**REFERENCE, "expires": in_("1 day")}
    status, error = refused(root.createArtifact, taskcluster.slugId(), "0", "public/x", body)
    assert (status, error["code"]) == (400, "InputError") and error["message"].startswith("Task not found")
    run = Run(server)
    status, error = refused(root.createArtifact, run.task_id, "1", "public/x", body)
    assert error["message"].startswith("Run not found")
    pending = taskcluster.slugId()
    root.createTask(pending, task_definition("art-prov/unclaimed"))
    status, error = refused(root.createArtifact, pending, "0", "public/x", body)
    assert error["message"].startswith("Run was not claimed by a worker")


def test_a_completed_run_accepts_no_artifacts(server):
    run = Run(server)
    run.worker.reportCompleted(run.task_id, "0")
    status, error = refused(run.create, "public/late", **REFERENCE)
    assert (status, error["code"]) == (409, "RequestConflict")


def test_an_exception_run_accepts_artifacts_for_a_while(server):
    run = Run(server)
    run.worker.reportException(run.task_id, "0", {"reason": "malformed-payload"})
    assert run.create("public/log", **REFERENCE) == {"storageType": "reference"}


# ---------------------------------------------------------------- immutability (§8.3)
def test_repeats_follow_the_immutability_rules(server):
    run = Run(server)
    expires = in_("1 day")
    run.create("public/r", **{**REFERENCE, "expires": expires})
    assert run.create("public/r", **{**REFERENCE, "expires": expires}) == {"storageType": "reference"}
    run.create("public/r", **{**REFERENCE, "url": "https://example.com/new", "expires": expires})
    assert run.root.getArtifact(run.task_id, "0", "public/r")["url"] == "https://example.com/new"
    conflicts = [
        {**REFERENCE, "contentType": "text/plain", "expires": expires},
        {**REFERENCE, "expires": in_("2 hours")},  # shorter
        {**ERROR, "expires": expires},  # another type
    ]
    for body in conflicts:
        status, error = refused(run.worker.createArtifact, run.task_id, "0", "public/r", body)
        assert (status, error["code"]) == (409, "RequestConflict"), body
        assert "Artifact already exists with different properties" in error["message"]
    run.create("public/target", **REFERENCE)
    run.create("public/r", storageType="link", artifact="public/target", contentType="x/y", expires=expires)
    info = run.root.artifactInfo(run.task_id, "0", "public/r")
    assert (info["storageType"], info["contentType"]) == ("link", "text/html")  # the original content type stays
    status, _ = refused(run.worker.createArtifact, run.task_id, "0", "public/r",
                        {"storageType": "link", "artifact": "public/other", "expires": expires})
    assert status == 409
    run.create("public/e", **ERROR)
    status, _ = refused(run.worker.createArtifact, run.task_id, "0", "public/e",
                        {**ERROR, "message": "another", "expires": in_("1 day")})
    assert status == 409


def test_object_artifacts_cannot_be_created_twice(server):
    run = Run(server)
    run.create("obj", storageType="object", contentType="text/plain")
    status, error = refused(run.create, "obj", storageType="object", contentType="text/plain")
    assert (status, error["code"]) == (409, "RequestConflict")  # upstream: 500 (Q11)


# ---------------------------------------------------------------- finishing (§8.4)
def test_finish_artifact_refuses_what_cannot_be_finished(server):
    run = Run(server)
    run.create("public/r", **REFERENCE)
    status, error = refused(run.worker.finishArtifact, run.task_id, "0", "public/r", {"uploadId": taskcluster.slugId()})
    assert (status, error["code"]) == (400, "InputError") and "Only object artifacts" in error["message"]
    status, error = refused(run.worker.finishArtifact, run.task_id, "0", "nothing", {"uploadId": taskcluster.slugId()})
    assert (status, error["code"]) == (404, "ResourceNotFound")
    obj = run.create("obj", storageType="object", contentType="text/plain")
    status, error = refused(run.worker.finishArtifact, run.task_id, "0", "obj", {"uploadId": taskcluster.slugId()})
    assert "given uploadId does not match" in error["message"]
    status, error = refused(run.worker.finishArtifact, run.task_id, "0", "obj", {"uploadId": obj["uploadId"]})
    assert status == 400 and "Object storing artifact data does not exist" in error["message"]


# ---------------------------------------------------------------- reading
def test_reference_artifacts_redirect(server):
    run = Run(server)
    run.create("public/r", **REFERENCE)
    answer = raw_get(run.root, "getArtifact", run.task_id, "0", "public/r")
    assert answer.status_code == 303 and answer.headers["Location"] == "https://example.com/x"
    assert answer.headers["x-taskcluster-artifact-storage-type"] == "reference"
    assert answer.json() == {"storageType": "reference", "url": "https://example.com/x"}
    assert run.root.artifact(run.task_id, "0", "public/r") == {"storageType": "reference",
                                                               "url": "https://example.com/x"}


def test_error_artifacts_answer_424(server):
    run = Run(server)
    run.create("public/e", **ERROR)
    status, body = refused(run.root.getArtifact, run.task_id, "0", "public/e")
    assert (status, body) == (424, {"reason": "file-missing-on-worker", "message": "no such file"})
    answer = raw_get(run.root, "getArtifact", run.task_id, "0", "public/e")
    assert answer.headers["x-taskcluster-artifact-storage-type"] == "error"
    assert run.root.artifact(run.task_id, "0", "public/e") == {"storageType": "error", **{
        "reason": "file-missing-on-worker", "message": "no such file"}}


def test_s3_artifacts_redirect_to_a_signed_url(server):
    run = Run(server)
    run.create("public/s3.json", storageType="s3", contentType="application/json")
    answer = raw_get(run.root, "getArtifact", run.task_id, "0", "public/s3.json")
    assert answer.status_code == 303 and answer.json()["url"] == answer.headers["Location"]
    assert answer.headers["x-taskcluster-artifact-storage-type"] == "s3"
    assert run.root.artifact(run.task_id, "0", "public/s3.json")["storageType"] == "s3"


def test_public_artifacts_are_readable_anonymously_and_others_are_not(server):
    run = Run(server)
    run.create("public/r", **REFERENCE)
    run.create("private/r", **REFERENCE)
    anonymous = server.anonymous_queue()
    assert anonymous.getArtifact(run.task_id, "0", "public/r")["url"] == "https://example.com/x"
    assert anonymous.getLatestArtifact(run.task_id, "public/r")["url"] == "https://example.com/x"
    status, body = refused(anonymous.getArtifact, run.task_id, "0", "private/r")
    assert (status, body["code"]) == (403, "InsufficientScopes")
    status, _ = refused(anonymous.listArtifacts, run.task_id, "0")
    assert status == 403


def test_link_chains_resolve_and_cycles_and_dangling_links_are_refused(server):
    run = Run(server)
    run.create("public/end", **REFERENCE)
    previous = "public/end"
    for i in range(30):
        run.create(f"public/link{i}", storageType="link", artifact=previous)
        previous = f"public/link{i}"
    assert run.root.getArtifact(run.task_id, "0", previous)["url"] == "https://example.com/x"
    assert len(run.root.listArtifacts(run.task_id, "0")["artifacts"]) == 31
    run.create("public/a", storageType="link", artifact="public/b")
    run.create("public/b", storageType="link", artifact="public/a")
    status, body = refused(run.root.getArtifact, run.task_id, "0", "public/a")
    assert (status, body["code"]) == (400, "InputError") and "Artifact leads to a link cycle" in body["message"]
    run.create("public/dangling", storageType="link", artifact="public/nowhere")
    assert refused(run.root.getArtifact, run.task_id, "0", "public/dangling")[0] == 404
    assert run.root.artifactInfo(run.task_id, "0", "public/a")["storageType"] == "link"  # info does not follow


def test_a_link_needs_the_scopes_of_every_name_on_the_way(server):
    run = Run(server)
    run.create("private/target", **REFERENCE)
    run.create("public/link", storageType="link", artifact="private/target")
    status, body = refused(server.anonymous_queue().getArtifact, run.task_id, "0", "public/link")
    assert status == 403
    assert "queue:get-artifact:public/link" in body["message"]
    assert "queue:get-artifact:private/target" in body["message"]


def test_expired_artifacts_answer_410_until_deleted(server):
    run = Run(server)
    run.create("public/old", **{**REFERENCE, "expires": in_("-5 minutes")})
    status, body = refused(run.root.getArtifact, run.task_id, "0", "public/old")
    assert (status, body["code"]) == (410, "ResourceExpired")


def test_latest_endpoints_use_the_last_run(server):
    run = Run(server)
    run.create("public/r", **REFERENCE)
    assert run.root.getLatestArtifact(run.task_id, "public/r")["url"] == "https://example.com/x"
    assert run.root.latestArtifact(run.task_id, "public/r")["storageType"] == "reference"
    assert run.root.latestArtifactInfo(run.task_id, "public/r")["name"] == "public/r"
    assert [a["name"] for a in run.root.listLatestArtifacts(run.task_id)["artifacts"]] == ["public/r"]
    unknown = taskcluster.slugId()
    for method in ("latestArtifact", "latestArtifactInfo"):
        status, body = refused(getattr(run.root, method), unknown, "public/r")
        assert status == 404 and body["message"].startswith("Task not found")
    status, body = refused(run.root.listArtifacts, run.task_id, "3")
    assert status == 404 and "has no run with runId: 3" in body["message"]
    unscheduled = taskcluster.slugId()
    run.root.createTask(unscheduled, task_definition("art-prov/never", dependencies=[unscheduled]))
    status, body = refused(run.root.listLatestArtifacts, unscheduled)
    assert status == 404 and body["message"].startswith("Task doesn't have any runs")


def test_listings_page_by_name(server):
    run = Run(server)
    names = sorted(f"public/{c}" for c in "edcba")
    for name in names:
        run.create(name, **REFERENCE)
    seen, token, pages = [], None, 0
    while True:
        query = {"limit": 2, **({"continuationToken": token} if token else {})}
        page = run.root.listArtifacts(run.task_id, "0", query=query)
        seen += [a["name"] for a in page["artifacts"]]
        pages += 1
        token = page.get("continuationToken")
        if not token:
            break
    assert (seen, pages) == (names, 3)
    assert [a["name"] for a in run.root.listLatestArtifacts(run.task_id, query={"limit": 10})["artifacts"]] == names


# ---------------------------------------------------------------- artifact-created on the exchange (§9.3)
def wait_for(predicate, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_artifact_created_is_published_for_present_artifacts_but_never_s3(tmp_path, postgres_url, amqp_url):
    server = ArtifactServer(tmp_path, postgres_url, TASKJOURNAL_AMQP_URL=amqp_url)
    try:
        route = f"tj-art.{taskcluster.slugId()[:8]}"
        subscriber = RouteSubscriber(amqp_url, "artifact-created", route)
        run = Run(server, routes=[route])
        run.create("public/s3", storageType="s3", contentType="text/plain")
        expires = in_("1 day")
        run.create("public/ref", **REFERENCE, expires=expires)
        run.create("public/ref", **REFERENCE, expires=expires)  # identical: no new event, no second message
        run.create("public/err", **ERROR)
        run.create("private/obj", storageType="object", contentType="text/plain")  # not present until finished
        wait_for(lambda: len(subscriber.bodies) >= 2, "artifact-created")
        run.create("public/last", **REFERENCE)  # everything before it has been relayed once this one arrives
        wait_for(lambda: len(subscriber.bodies) >= 3, "the last artifact-created")
        names = [body["artifact"]["name"] for _, body in subscriber.bodies]
        assert names == ["public/ref", "public/err", "public/last"]
        key, body = subscriber.bodies[0]
        assert key == f"primary.{run.task_id}.0.art-group.art-worker.{body['status']['provisionerId']}." \
                      f"{body['status']['workerType']}.-.{run.task_id}._"
        assert body["artifact"]["storageType"] == "reference" and body["runId"] == 0
        assert body["status"]["state"] == "running"
    finally:
        server.stop()


# ---------------------------------------------------------------- races (real concurrent requests)
def test_racing_creates_of_one_name_leave_one_artifact_and_one_winner(server):
    """Eight workers' retries of the same createArtifact race: all succeed (the
    repeats are compatible) and one artifact exists. Racing *conflicting*
    creates: exactly one type wins, every other call is a 409."""
    from concurrent.futures import ThreadPoolExecutor

    run = Run(server)
    expires = in_("1 day")
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: run.create("public/same", **{**REFERENCE, "expires": expires}), range(8)))
    assert replies == [{"storageType": "reference"}] * 8
    assert [a["name"] for a in run.root.listArtifacts(run.task_id, "0")["artifacts"]] == ["public/same"]

    bodies = [{**ERROR, "message": f"worker {i}", "expires": expires} for i in range(8)]

    def attempt(body):
        try:
            run.worker.createArtifact(run.task_id, "0", "public/contested", body)
            return body["message"]
        except TaskclusterRestFailure as failure:
            assert failure.status_code == 409, failure.body
            return None

    with ThreadPoolExecutor(8) as pool:
        winners = [w for w in pool.map(attempt, bodies) if w is not None]
    assert len(winners) == 1
    status, body = refused(run.root.getArtifact, run.task_id, "0", "public/contested")
    assert (status, body["message"]) == (424, winners[0])
