"""Artifacts where the end-to-end suite cannot reach (yet): object artifacts
from createArtifact to download, with the object service's Journal commands
faked until the objects branch is merged (tests/storage_fakes.py), and
expiry deleting s3 artifacts' bytes with their rows. The gateway runs
in-process on a Journal of each store."""

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskjournal.services.api_gateway.claimwork import PendingSignal
from taskjournal.services.bootstrap import gateway_app
from taskjournal.services.scheduler.expiry import expire_artifacts
from taskjournal.shared import storage
from taskjournal.shared.config import Settings
from taskjournal.shared.domain import definition as definitions
from taskjournal.shared.domain.artifact import details_for
from taskjournal.shared.domain.errors import RequestConflict
from taskjournal.shared.domain.ids import task_id_of
from taskjournal.shared.domain.time import format_ms, now_ms
from taskjournal.shared.store.retention import GRACE_MS, drop_expired_objects
from tests.storage_fakes import MemoryBlobStore
from tests.unit.domain.test_artifact import model_allows

API = "/api/queue/v1"
HOUR = 3600 * 1000
ROOT_URL = "http://taskjournal.test:8080"


def running_task(journal) -> tuple[str, int]:
    now = now_ms()
    task_id, queue = task_id_of(uuid.uuid4()), f"tj-art/q{uuid.uuid4().hex[:12]}"
    body = {"taskQueueId": queue, "created": format_ms(now), "deadline": format_ms(now + HOUR),
            "projectId": "my-project", "payload": {},
            "metadata": {"name": "t", "description": "d", "owner": "o@example.com", "source": "https://example.com"}}
    journal.create_task(task_id, definitions.normalize(task_id, body, now), now)
    claimed, = journal.claim_work(queue, "wg", "wid", 1, now, now + HOUR)
    return claimed.task_id, 0


@pytest.fixture
async def gateway(journal, tmp_path):
    settings = Settings(root_url=ROOT_URL, data_dir=tmp_path, root_client_id="root", root_access_token="secret",
                        anonymous_scopes=("queue:*",))
    blobs = MemoryBlobStore(ROOT_URL)
    with ThreadPoolExecutor(4) as executor:
        app = gateway_app(settings, journal, executor, PendingSignal(), blobs)
        async with TestClient(TestServer(app)) as client:
            yield client, settings, blobs


async def call(client, method: str, path: str, body=None, status: int = 200):
    reply = await client.request(method, API + path, json=body, allow_redirects=False)
    assert reply.status == status, (method, path, reply.status, (await reply.text())[:500])
    return reply


async def test_an_object_artifact_from_creation_to_download(journal, gateway):
    client, settings, blobs = gateway
    task_id, run_id = running_task(journal)
    path = f"/task/{task_id}/runs/{run_id}/artifacts/public%2Fbuild%2Fout.tar"
    expires = format_ms(now_ms() + HOUR)
    created = await (await call(client, "POST", path, {"storageType": "object", "contentType": "application/x-tar",
                                                      "expires": expires})).json()
    name = f"t/{task_id}/0/public/build/out.tar"
    assert (created["name"], created["projectId"], created["expires"]) == (name, "my-project", expires)
    if hasattr(journal, "fake_uploads"):  # the name is reserved in the object service with this uploadId
        assert journal.fake_uploads[name] == created["uploadId"]
    cert = orjson.loads(created["credentials"]["certificate"])
    assert cert["scopes"] == [f"object:upload:my-project:{name}"]

    info = f"/task/{task_id}/runs/0/artifact-info/public%2Fbuild%2Fout.tar"
    await call(client, "GET", info, status=404)  # not present before finishArtifact
    finish = {"uploadId": created["uploadId"]}
    refused = await (await call(client, "PUT", path, finish, status=400)).json()
    assert "Object storing artifact data does not exist" in refused["message"]

    finish_upload(journal, name, created["uploadId"])  # the worker's upload through the object service
    assert (await call(client, "PUT", path, finish, status=204)).content_length in (None, 0)
    await call(client, "PUT", path, {"uploadId": created["uploadId"]}, status=204)  # idempotent
    assert (await (await call(client, "GET", info)).json())["storageType"] == "object"

    content = await (await call(client, "GET", f"/task/{task_id}/runs/0/artifact-content/public%2Fbuild%2Fout.tar")).json()
    assert content["name"] == name
    assert orjson.loads(content["credentials"]["certificate"])["scopes"] == [f"object:download:{name}"]
    assert content["credentials"]["clientId"] == f"artifact-download/{task_id}/0/public/build/out.tar"

    redirect = await call(client, "GET", path, status=303)
    location = redirect.headers["Location"]
    assert redirect.headers["x-taskcluster-artifact-storage-type"] == "object"
    assert (await redirect.json()) == {"storageType": "object", "url": location}
    assert location.split("?")[0] == storage.object_download_url(blobs, name, now_ms()).split("?")[0]


async def test_get_artifact_of_an_object_the_object_service_no_longer_has_is_a_404(journal, gateway):
    """getArtifact asks the object service for the object, as upstream: once
    it is gone (purged by its own expiry, here run with a clock an hour
    ahead), both redirects are 404 "Object does not exist." while the
    artifact itself is still listed and described."""
    client, _, _ = gateway
    task_id, run_id = running_task(journal)
    path = f"/task/{task_id}/runs/{run_id}/artifacts/public%2Fgone.txt"
    created = await (await call(client, "POST", path, {"storageType": "object", "contentType": "text/plain",
                                                      "expires": format_ms(now_ms() + HOUR)})).json()
    finish_upload(journal, created["name"], created["uploadId"])
    await call(client, "PUT", path, {"uploadId": created["uploadId"]}, status=204)
    await call(client, "GET", path, status=303)

    assert drop_expired_objects(journal, now_ms() + HOUR + 1) == [created["name"]]
    for gone in (path, f"/task/{task_id}/artifacts/public%2Fgone.txt"):
        error = await (await call(client, "GET", gone, status=404)).json()
        assert (error["code"], error["message"].split("\n")[0]) == ("ResourceNotFound", "Object does not exist.")
    await call(client, "GET", f"/task/{task_id}/runs/{run_id}/artifact-info/public%2Fgone.txt")


def finish_upload(journal, name: str, upload_id: str) -> None:
    journal.finish_upload(name, "my-project", upload_id, {}, now_ms())


def test_concurrent_creates_of_one_artifact_agree(journal):
    """Racing createArtifact calls for the same name: one creates, the others
    are compatible repeats; one artifact, no error."""
    task_id, run_id = running_task(journal)
    request = {"storageType": "reference", "url": "https://a", "contentType": "text/plain",
               "expires": format_ms(now_ms() + HOUR)}

    async def race():
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(8) as executor:
            return await asyncio.gather(*[
                loop.run_in_executor(executor, journal.create_artifact, task_id, run_id, "public/x", request, now_ms())
                for _ in range(8)])

    results = asyncio.run(race())
    assert {r.id for r in results} == {results[0].id}
    assert [row["name"] for row in journal.views.artifacts_page(task_id, run_id, "", 10)] == ["public/x"]


# ---------------------------------------------------------------- the immutability rules, through the Journal
CALLS = st.fixed_dictionaries({
    "storageType": st.sampled_from(["reference", "link", "error", "s3"]),
    "contentType": st.sampled_from(["text/plain", "text/html"]),
    "expires": st.sampled_from([HOUR, 2 * HOUR]),
    "target": st.sampled_from(["public/a", "https://a", "https://b"]),
})


def as_request(call: dict, now: int) -> dict:
    request = {"storageType": call["storageType"], "contentType": call["contentType"],
               "expires": format_ms(now + call["expires"])}
    if call["storageType"] == "reference":
        request["url"] = call["target"]
    elif call["storageType"] == "link":
        request["artifact"] = call["target"]
    elif call["storageType"] == "error":
        request.update(reason="file-missing-on-worker", message=call["target"])
    return request


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=st.lists(CALLS, min_size=1, max_size=5))
def test_a_sequence_of_creates_keeps_to_the_rules(journal, calls):
    """Each call is accepted or refused as the rules say, and the stored
    artifact is always what the accepted calls made it (a model of §8.3)."""
    task_id, run_id = running_task(journal)
    now, model = now_ms(), None
    for call in calls:
        request = as_request(call, now)
        details = details_for(call["storageType"], request, task_id, run_id, "public/x")
        new = {"storageType": call["storageType"], "contentType": call["contentType"],
               "expires": now + call["expires"], "details": details}
        allowed = model is None or model_allows(model, new)
        try:
            journal.create_artifact(task_id, run_id, "public/x", request, now)
            assert allowed, (model, new)
            model = new if model is None else {**new, "contentType": model["contentType"]}
        except RequestConflict:
            assert not allowed, (model, new)
        row = journal.views.artifact_row(task_id, run_id, "public/x")
        assert {"storageType": row["storage_type"], "contentType": row["content_type"], "expires": row["expires"],
                "details": orjson.loads(row["details"])} == model


async def test_without_a_blob_store_expiry_keeps_s3_artifacts_and_drops_the_others(journal):
    task_id, run_id = running_task(journal)
    now = now_ms()
    for name, kind in (("public/s3", "s3"), ("public/ref", "reference")):
        journal.create_artifact(task_id, run_id, name, {"storageType": kind, "contentType": "text/plain",
                                                        "url": "https://a", "expires": format_ms(now + 60_000)}
                                if kind == "reference" else {"storageType": kind, "contentType": "text/plain",
                                                             "expires": format_ms(now + 60_000)}, now)
    with ThreadPoolExecutor(2) as executor:
        assert await expire_artifacts(journal, executor, None, now + 60_000 + GRACE_MS + 1) == 1
    assert [row["name"] for row in journal.views.artifacts_page(task_id, run_id, "", 10)] == ["public/s3"]
