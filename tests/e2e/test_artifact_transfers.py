"""Artifact bytes end to end, as a worker and a consumer move them with the
official Python client: an object artifact uploaded with the client's upload
helper and downloaded with its artifact download helper (and by a plain GET
of getArtifact's redirect, as curl -L does); an s3 artifact PUT to its
putUrl and read back through the redirect, gzip kept. These need the storage
back ends and the object service (the objects branch): without them they
are skipped."""

import datetime as dt
import gzip
import os

import requests
import taskcluster
from taskcluster import download, upload

from .test_artifacts import Run, in_, server  # noqa: F401  (server: the same module-scoped fixture)


def test_a_worker_uploads_its_log_and_another_client_downloads_it(server):
    run = Run(server)
    log = b"line one\n" + os.urandom(3000) + b"\nthe end\n"
    created = run.create("public/logs/live.log", storageType="object", contentType="text/plain")
    object_service = taskcluster.Object({"rootUrl": server.root_url, "credentials": created["credentials"]})
    upload.uploadFromBuf(projectId=created["projectId"], name=created["name"], contentType="text/plain",
                         contentLength=len(log), expires=parse(created["expires"]), uploadId=created["uploadId"],
                         data=log, objectService=object_service, maxRetries=0)
    run.worker.finishArtifact(run.task_id, "0", "public/logs/live.log", {"uploadId": created["uploadId"]})
    run.worker.reportCompleted(run.task_id, "0")

    consumer = server.anonymous_queue()  # public/ names: the anonymous scopes suffice
    data, content_type = download.downloadArtifactToBuf(taskId=run.task_id, name="public/logs/live.log",
                                                        queueService=consumer, maxRetries=0)
    assert (bytes(data), content_type) == (log, "text/plain")
    data, _ = download.downloadArtifactToBuf(taskId=run.task_id, runId=0, name="public/logs/live.log",
                                             queueService=consumer, maxRetries=0)
    assert bytes(data) == log
    url = consumer.buildUrl("getLatestArtifact", run.task_id, "public/logs/live.log")
    assert requests.get(url, timeout=10).content == log  # a plain GET follows the redirects to the bytes


def test_an_s3_artifact_put_to_its_url_reads_back_with_its_encoding(server):
    run = Run(server)
    text = b"{\"hello\": \"world\"}\n" * 100
    created = run.create("public/data.json", storageType="s3", contentType="application/json")
    put = requests.put(created["putUrl"], data=gzip.compress(text),
                       headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}, timeout=10)
    assert put.status_code in (200, 201, 204), put.text
    answer = requests.get(server.anonymous_queue().buildUrl("getArtifact", run.task_id, "0", "public/data.json"),
                          timeout=10)
    assert answer.status_code == 200 and answer.content == text  # requests undoes the gzip it was told about
    assert answer.headers.get("Content-Encoding") == "gzip"
    data, content_type = download.downloadArtifactToBuf(taskId=run.task_id, runId=0, name="public/data.json",
                                                        queueService=server.anonymous_queue(), maxRetries=0)
    assert bytes(data) == text and content_type == "application/json"


def test_a_link_downloads_its_targets_bytes(server):
    run = Run(server)
    created = run.create("private/real.bin", storageType="object", contentType="application/octet-stream")
    object_service = taskcluster.Object({"rootUrl": server.root_url, "credentials": created["credentials"]})
    upload.uploadFromBuf(projectId=created["projectId"], name=created["name"], contentType="application/octet-stream",
                         contentLength=4, expires=parse(created["expires"]), uploadId=created["uploadId"],
                         data=b"\x00\x01\x02\x03", objectService=object_service, maxRetries=0)
    run.worker.finishArtifact(run.task_id, "0", "private/real.bin", {"uploadId": created["uploadId"]})
    run.create("private/link.bin", storageType="link", artifact="private/real.bin", expires=in_("1 day"))
    data, _ = download.downloadArtifactToBuf(taskId=run.task_id, runId=0, name="private/link.bin",
                                             queueService=run.root, maxRetries=0)
    assert bytes(data) == b"\x00\x01\x02\x03"


def parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
