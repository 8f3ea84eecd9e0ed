"""Every artifact behaviour of the Queue (and the object service behind
object artifacts), seen only through HTTP and the official Python client:
its sync and aio helpers upload and download the bytes."""

import base64
import gzip
import hashlib
import http.server
import os
import threading

import pytest
import requests
import taskcluster
import taskcluster.aio
import taskcluster.aio.download
import taskcluster.aio.upload
import taskcluster.download
import taskcluster.upload
from taskcluster.exceptions import TaskclusterArtifactError, TaskclusterRestFailure

from .conftest import Run, Target, claim, task_definition, unique_queue_id


def expires(offset: str = "1 day") -> str:
    return taskcluster.stringDate(taskcluster.fromNow(offset))


def put_s3(run: Run, name: str, data: bytes, content_type: str = "text/plain", encoding: str | None = None) -> None:
    """An s3 artifact as a worker makes one: createArtifact, then PUT to its putUrl."""
    created = run.worker.createArtifact(run.task_id, str(run.run_id), name, {
        "storageType": "s3", "contentType": content_type, "expires": expires()})
    headers = {"Content-Type": content_type, **({"Content-Encoding": encoding} if encoding else {})}
    requests.put(created["putUrl"], data=data, headers=headers, timeout=30).raise_for_status()


def put_object(target: Target, run: Run, name: str, data: bytes, content_type: str = "text/plain") -> None:
    """An object artifact: createArtifact, the upload helper with the
    credentials createArtifact gave, finishArtifact."""
    created = run.worker.createArtifact(run.task_id, str(run.run_id), name, {
        "storageType": "object", "contentType": content_type, "expires": expires()})
    taskcluster.upload.uploadFromBuf(
        projectId=created["projectId"], name=created["name"], contentType=content_type, contentLength=len(data),
        expires=created["expires"], uploadId=created["uploadId"], data=data, maxRetries=0,
        objectService=taskcluster.Object(target.options(created["credentials"])))
    run.worker.finishArtifact(run.task_id, str(run.run_id), name, {"uploadId": created["uploadId"]})


def create(run: Run, name: str, **request) -> dict:
    return run.worker.createArtifact(run.task_id, str(run.run_id), name, {"expires": expires(), **request})


def download(target: Target, run: Run, name: str, latest: bool = False, credentials: dict | None = None) -> bytes:
    run_id = {} if latest else {"runId": run.run_id}
    data, _ = taskcluster.download.downloadArtifactToBuf(taskId=run.task_id, name=name, maxRetries=0,
                                                        queueService=target.queue(credentials), **run_id)
    return bytes(data)


def failure(call, *args, **kwargs) -> TaskclusterRestFailure:
    with pytest.raises(TaskclusterRestFailure) as caught:
        call(*args, **kwargs)
    return caught.value


@pytest.fixture(scope="module")
def web_server():
    """Somewhere a reference artifact can point: a plain HTTP server
    answering every GET with the path's bytes."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"referenced {self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


# ---------------------------------------------------------------- the five storage types
def test_every_storage_type_through_the_sync_helper(target, run, web_server):
    put_s3(run, "public/s3.bin", b"s3 bytes", "application/octet-stream")
    put_object(target, run, "public/object.txt", b"object bytes")
    create(run, "public/reference.txt", storageType="reference", url=f"{web_server}/ref", contentType="text/plain")
    create(run, "public/link.txt", storageType="link", artifact="public/object.txt")
    create(run, "public/error.txt", storageType="error", reason="file-missing-on-worker", message="gone")

    assert download(target, run, "public/s3.bin") == b"s3 bytes"
    assert download(target, run, "public/object.txt") == b"object bytes"
    assert download(target, run, "public/reference.txt") == b"referenced /ref"
    assert download(target, run, "public/link.txt") == b"object bytes"
    with pytest.raises(TaskclusterArtifactError) as caught:
        download(target, run, "public/error.txt")
    assert (caught.value.reason, str(caught.value)) == ("file-missing-on-worker", "gone")

    listed = target.queue().listArtifacts(run.task_id, str(run.run_id))["artifacts"]
    assert {a["name"]: a["storageType"] for a in listed} == {
        "public/s3.bin": "s3", "public/object.txt": "object", "public/reference.txt": "reference",
        "public/link.txt": "link", "public/error.txt": "error"}


async def test_the_aio_helpers_upload_and_download(target, run):
    data = os.urandom(300_000)  # beyond what dataInline carries: a putUrl upload
    created = create(run, "public/aio.bin", storageType="object", contentType="application/x-aio")
    objects = taskcluster.aio.Object(target.options(created["credentials"]))
    await taskcluster.aio.upload.uploadFromBuf(
        projectId=created["projectId"], name=created["name"], contentType="application/x-aio",
        contentLength=len(data), expires=created["expires"], uploadId=created["uploadId"], data=data,
        objectService=objects, maxRetries=0)
    run.worker.finishArtifact(run.task_id, str(run.run_id), "public/aio.bin", {"uploadId": created["uploadId"]})

    queue = taskcluster.aio.Queue(target.options())
    got, content_type = await taskcluster.aio.download.downloadArtifactToBuf(
        taskId=run.task_id, runId=run.run_id, name="public/aio.bin", queueService=queue, maxRetries=0)
    assert (bytes(got), content_type) == (data, "application/x-aio")
    got, _ = await taskcluster.aio.download.downloadArtifactToBuf(  # the latest run's
        taskId=run.task_id, name="public/aio.bin", queueService=queue, maxRetries=0)
    assert bytes(got) == data


def test_get_artifact_redirects_to_the_bytes(target, run, web_server):
    put_s3(run, "public/s3.txt", b"plain")
    create(run, "public/reference.txt", storageType="reference", url=f"{web_server}/x", contentType="text/plain")
    queue = target.queue()
    for name in ("public/s3.txt", "public/reference.txt"):
        reply = queue.getArtifact(run.task_id, str(run.run_id), name)  # the 303's JSON body
        assert reply["storageType"] == name.split("/")[1].split(".")[0]
        assert requests.get(reply["url"], timeout=30).status_code == 200
    signed = queue.buildSignedUrl("getLatestArtifact", run.task_id, "public/s3.txt")
    redirect = requests.get(signed, allow_redirects=False, timeout=30)
    assert redirect.status_code == 303 and redirect.headers["x-taskcluster-artifact-storage-type"] == "s3"
    assert requests.get(redirect.headers["Location"], timeout=30).content == b"plain"


# ---------------------------------------------------------------- links, errors, expiry
def test_link_chains_resolve_and_cycles_are_refused(target, run):
    put_object(target, run, "public/target.txt", b"at the end of the chain")
    previous = "public/target.txt"
    for i in range(10):
        create(run, f"public/link{i}", storageType="link", artifact=previous)
        previous = f"public/link{i}"
    assert download(target, run, "public/link9") == b"at the end of the chain"
    assert download(target, run, "public/link9", latest=True) == b"at the end of the chain"
    info = target.queue().artifactInfo(run.task_id, str(run.run_id), "public/link9")
    assert info["storageType"] == "link"  # metadata does not follow links

    create(run, "public/a", storageType="link", artifact="public/b")
    create(run, "public/b", storageType="link", artifact="public/a")
    queue = target.queue()
    for call in (queue.getArtifact, queue.artifact):
        refused = failure(call, run.task_id, str(run.run_id), "public/a")
        assert (refused.status_code, refused.body["code"]) == (400, "InputError")
    create(run, "public/dangling", storageType="link", artifact="public/nothing")
    assert failure(queue.getArtifact, run.task_id, str(run.run_id), "public/dangling").status_code == 404


def test_an_error_artifact_answers_424(target, run):
    create(run, "public/broken.log", storageType="error", reason="too-large-file-on-worker", message="too big")
    refused = failure(target.queue().getArtifact, run.task_id, str(run.run_id), "public/broken.log")
    assert refused.status_code == 424
    content = target.queue().artifact(run.task_id, str(run.run_id), "public/broken.log")  # 200 here
    assert content == {"storageType": "error", "reason": "too-large-file-on-worker", "message": "too big"}


def test_an_expired_artifact_answers_410(target, run, web_server):
    create(run, "public/old.txt", storageType="reference", url=f"{web_server}/old", contentType="text/plain",
           expires=expires("-1 minute"))  # accepted up to 15 minutes in the past
    queue = target.queue()
    for call in (queue.getArtifact, queue.artifact):
        assert failure(call, run.task_id, str(run.run_id), "public/old.txt").status_code == 410
    assert failure(queue.getLatestArtifact, run.task_id, "public/old.txt").status_code == 410


# ---------------------------------------------------------------- immutability
def test_a_repeated_create_artifact_must_be_compatible(target, run, web_server):
    ref = {"storageType": "reference", "url": f"{web_server}/1", "contentType": "text/plain",
           "expires": expires("1 day")}
    name, task, run_id = "public/immutable", run.task_id, str(run.run_id)
    run.worker.createArtifact(task, run_id, name, ref)
    run.worker.createArtifact(task, run_id, name, ref)  # the same again: fine
    run.worker.createArtifact(task, run_id, name, {**ref, "url": f"{web_server}/2"})  # a reference may move
    assert download(target, run, name) == b"referenced /2"
    for changed in ({**ref, "contentType": "text/html"},  # never another content type
                    {**ref, "expires": expires("1 hour")},  # never an earlier expiry
                    {"storageType": "error", "reason": "file-missing-on-worker", "message": "m",
                     "expires": ref["expires"]}):  # never another type, but for a link
        refused = failure(run.worker.createArtifact, task, run_id, name, changed)
        assert (refused.status_code, refused.body["code"]) == (409, "RequestConflict")
    run.worker.createArtifact(task, run_id, "public/other", {**ref, "url": f"{web_server}/other"})
    run.worker.createArtifact(task, run_id, name, {"storageType": "link", "artifact": "public/other",
                                                   "expires": expires("2 days")})  # reference -> link
    assert download(target, run, name) == b"referenced /other"
    refused = failure(run.worker.createArtifact, task, run_id, name, {
        "storageType": "link", "artifact": "public/immutable-x", "expires": expires("2 days")})
    assert refused.status_code == 409  # a link keeps its target


# ---------------------------------------------------------------- credentials
def test_run_credentials_reach_their_own_run_only(target, run):
    other_queue, other_task = unique_queue_id(), taskcluster.slugId()
    target.queue().createTask(other_task, task_definition(other_queue))
    other = claim(target, other_queue, other_task)
    request = {"storageType": "reference", "url": "https://example.com/", "contentType": "text/plain",
               "expires": expires()}
    run.worker.createArtifact(run.task_id, str(run.run_id), "public/mine", request)
    refused = failure(run.worker.createArtifact, other.task_id, str(other.run_id), "public/theirs", request)
    assert (refused.status_code, refused.body["code"]) == (403, "InsufficientScopes")

    created = create(run, "private/upload.bin", storageType="object", contentType="application/octet-stream")
    objects = taskcluster.Object(target.options(created["credentials"]))
    with pytest.raises(TaskclusterRestFailure) as caught:  # the upload credentials name one object only
        taskcluster.upload.uploadFromBuf(projectId=created["projectId"], name=created["name"] + "-elsewhere",
                                         contentType="text/plain", contentLength=1, expires=created["expires"],
                                         data=b"x", objectService=objects, maxRetries=0)
    assert caught.value.status_code == 403


def test_reading_needs_get_artifact_for_every_name_on_the_way(target, run):
    put_object(target, run, "private/secret.txt", b"secret")
    put_object(target, run, "public/open.txt", b"open")
    create(run, "public/to-secret", storageType="link", artifact="private/secret.txt")
    reader = taskcluster.createTemporaryCredentials(
        target.credentials["clientId"], target.credentials["accessToken"], taskcluster.fromNow("-1 minute"),
        taskcluster.fromNow("1 hour"), ["queue:get-artifact:public/*"])
    assert download(target, run, "public/open.txt", credentials=reader) == b"open"
    for name in ("private/secret.txt", "public/to-secret"):
        refused = failure(target.queue(reader).getArtifact, run.task_id, str(run.run_id), name)
        assert refused.status_code == 403


# ---------------------------------------------------------------- listings, runs
def test_list_artifacts_pages_by_name(target, run):
    names = [f"public/page/{i:02}" for i in range(7)]
    for name in reversed(names):
        create(run, name, storageType="reference", url="https://example.com/", contentType="text/plain")
    queue = target.queue()
    for listing in (lambda q: queue.listArtifacts(run.task_id, str(run.run_id), query=q),
                    lambda q: queue.listLatestArtifacts(run.task_id, query=q)):
        seen, token, pages = [], None, 0
        while True:
            page = listing({"limit": 3, **({"continuationToken": token} if token else {})})
            seen += [a["name"] for a in page["artifacts"]]
            pages += 1
            token = page.get("continuationToken")
            if not token:
                break
        assert (seen, pages) == (names, 3)


def test_latest_means_the_last_run(target, run):
    put_object(target, run, "public/result.txt", b"run 0")
    run.worker.reportException(run.task_id, str(run.run_id), {"reason": "worker-shutdown"})  # retried: run 1
    second = claim(target, run.queue_id, run.task_id)
    assert second.run_id == 1
    assert failure(target.queue().getLatestArtifact, run.task_id, "public/result.txt").status_code == 404
    put_object(target, second, "public/result.txt", b"run 1")
    assert download(target, run, "public/result.txt") == b"run 0"
    assert download(target, second, "public/result.txt") == b"run 1"
    assert download(target, run, "public/result.txt", latest=True) == b"run 1"
    assert [a["name"] for a in target.queue().listLatestArtifacts(run.task_id)["artifacts"]] == ["public/result.txt"]


# ---------------------------------------------------------------- bytes
def test_a_gzip_encoded_artifact_comes_back_decoded(target, run):
    text = b"a log line\n" * 1000
    put_s3(run, "public/logs/live.log", gzip.compress(text), "text/plain", encoding="gzip")
    assert download(target, run, "public/logs/live.log") == text
    url = target.queue().getArtifact(run.task_id, str(run.run_id), "public/logs/live.log")["url"]
    raw = requests.get(url, stream=True, timeout=30)
    assert raw.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(raw.raw.read()) == text


def test_downloads_verify_the_object_hashes(target, run):
    data = os.urandom(2048)
    put_object(target, run, "public/hashed.bin", data)
    name = f"t/{run.task_id}/{run.run_id}/public/hashed.bin"
    reply = target.queue().artifact(run.task_id, str(run.run_id), "public/hashed.bin")
    started = taskcluster.Object(target.options(reply["credentials"])).startDownload(
        name, {"acceptDownloadMethods": {"getUrl": True}})
    assert started["hashes"]["sha256"] == hashlib.sha256(data).hexdigest()

    # an upload that declares a wrong hash: refused when it finishes where the back end hashed the bytes
    # it stored (the file back end), else caught by the download helper (S3 computes no sha256)
    created = create(run, "public/lying.bin", storageType="object", contentType="application/octet-stream")
    objects = taskcluster.Object(target.options(created["credentials"]))
    upload = {"projectId": created["projectId"], "uploadId": created["uploadId"]}
    objects.createUpload(created["name"], {**upload, "expires": created["expires"], "proposedUploadMethods": {"dataInline": {
        "contentType": "application/octet-stream", "objectData": base64.b64encode(data).decode()}}})
    try:
        objects.finishUpload(created["name"], {**upload, "hashes": {"sha256": hashlib.sha256(b"other").hexdigest()}})
        run.worker.finishArtifact(run.task_id, str(run.run_id), "public/lying.bin", {"uploadId": created["uploadId"]})
    except TaskclusterRestFailure as refused:
        assert (refused.status_code, "hash" in str(refused), target.kind) in ((400, True, "dev"), (400, True, "external"))
        return
    assert target.kind != "dev"
    with pytest.raises(taskcluster.exceptions.ObjectHashVerificationError):
        download(target, run, "public/lying.bin")
