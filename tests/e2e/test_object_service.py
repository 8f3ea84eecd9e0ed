"""The object service end to end: the real `taskjournal dev` process, driven
by the official Python client's upload and download helpers (sync and aio),
on the file back end (SQLite and PostgreSQL) and the S3 back end (moto's
standalone server); bad input answered 4xx in Taskcluster's format."""

import asyncio
import base64
import gzip
import hashlib
import io
import os

import aiohttp
import pytest
import requests
import taskcluster
import taskcluster.aio
import taskcluster.aio.download
import taskcluster.aio.upload
import taskcluster.download
import taskcluster.upload
from taskcluster.exceptions import TaskclusterRestFailure

from taskjournal.shared.storage.files import FileBlobStore, signing_key
from tests.e2e.conftest import Server
from tests.moto_support import bucket_names

PROJECT = "e2e-project"


FILE_BACK_END = pytest.mark.parametrize("server", ["file-sqlite", "file-postgres"], indirect=True)


@pytest.fixture(scope="module", params=["file-sqlite", "file-postgres", "s3-sqlite"])
def server(request, tmp_path_factory):
    back_end, store = request.param.split("-")
    database_url = request.getfixturevalue("module_postgres_url") if store == "postgres" else None
    env = {}
    if back_end == "s3":
        moto = request.getfixturevalue("moto")
        public, private = bucket_names()
        moto.create_buckets(public, private)
        env = {"TASKJOURNAL_ARTIFACT_STORE": "s3", "TASKJOURNAL_S3_ENDPOINT_URL": moto.url,
               "TASKJOURNAL_S3_PUBLIC_BUCKET": public, "TASKJOURNAL_S3_PRIVATE_BUCKET": private}
    srv = Server(tmp_path_factory.mktemp("objects"), database_url, **env)
    srv.back_end = back_end
    yield srv
    srv.stop()


def objects(server, credentials=None) -> taskcluster.Object:
    return taskcluster.Object(server.options(credentials))


def upload(server, name: str, data: bytes, content_type: str = "application/octet-stream", **kwargs) -> None:
    taskcluster.upload.uploadFromBuf(projectId=PROJECT, name=name, contentType=content_type,
                                     contentLength=len(data), expires=taskcluster.fromNow("1 day"), data=data,
                                     objectService=kwargs.pop("service", None) or objects(server), **kwargs)


def error(reply: requests.Response, status: int, code: str) -> dict:
    assert reply.status_code == status, f"{reply.status_code}: {reply.text[:1000]}"
    body = reply.json()
    assert body.get("code") == code and set(body) == {"code", "message", "requestInfo"}, body
    return body


def rest_error(call, status: int, code: str) -> TaskclusterRestFailure:
    with pytest.raises(TaskclusterRestFailure) as failure:
        call()
    assert (failure.value.status_code, failure.value.body.get("code")) == (status, code), failure.value.body
    return failure.value


def unique(name: str) -> str:
    return f"e2e/{os.urandom(4).hex()}/{name}"


# ---------------------------------------------------------------- the helpers, both directions
@pytest.mark.parametrize("size", [0, 100, 8191, 8192, 1_000_003])  # dataInline below 8192 bytes, putUrl from there
def test_python_helpers_round_trip(server, size):
    name, data = unique(f"blob-{size}"), os.urandom(size)
    upload(server, name, data, "application/x-e2e")
    got, content_type = taskcluster.download.downloadToBuf(name=name, objectService=objects(server))
    assert bytes(got) == data and content_type == "application/x-e2e"
    assert objects(server).object(name)["hashes"] == {"sha256": hashlib.sha256(data).hexdigest(),
                                                      "sha512": hashlib.sha512(data).hexdigest()}


def test_python_file_helpers(server, tmp_path):
    name, data = unique("file"), os.urandom(300_000)
    source = tmp_path / "source"
    source.write_bytes(data)
    with open(source, "rb") as file:
        taskcluster.upload.uploadFromFile(projectId=PROJECT, name=name, contentType="text/plain",
                                          contentLength=len(data), expires=taskcluster.fromNow("1 day"), file=file,
                                          objectService=objects(server))
    with open(tmp_path / "target", "wb") as file:
        assert taskcluster.download.downloadToFile(file=file, name=name, objectService=objects(server)) == "text/plain"
    assert (tmp_path / "target").read_bytes() == data


def test_aio_helpers_round_trip(server):
    async def scenario():
        name, data = unique("aio"), os.urandom(200_000)
        async with aiohttp.ClientSession() as session:
            service = taskcluster.aio.Object(server.options(), session=session)
            await taskcluster.aio.upload.uploadFromBuf(
                projectId=PROJECT, name=name, contentType="image/png", contentLength=len(data),
                expires=taskcluster.fromNow("1 day"), data=data, objectService=service)
            got, content_type = await taskcluster.aio.download.downloadToBuf(name=name, objectService=service)
        return got == data and content_type == "image/png"

    assert asyncio.run(scenario())


def test_simple_download_and_redirect_need_no_credentials_after_the_call(server):
    name, data = unique("simple"), b"<html>plain bytes</html>"
    upload(server, name, data, "text/html")
    reply = objects(server).startDownload(name, {"acceptDownloadMethods": {"simple": True}})
    assert reply["method"] == "simple"
    fetched = requests.get(reply["url"])
    assert (fetched.status_code, fetched.content) == (200, data)
    redirect = requests.get(objects(server).buildSignedUrl("download", name), allow_redirects=False)
    assert redirect.status_code == 303
    assert requests.get(redirect.headers["Location"]).content == data


def test_download_url_serves_ranges(server):
    name, data = unique("range"), os.urandom(50_000)
    upload(server, name, data)
    url = objects(server).startDownload(name, {"acceptDownloadMethods": {"getUrl": True}})["url"]
    part = requests.get(url, headers={"Range": "bytes=100-199"})
    assert (part.status_code, part.content) == (206, data[100:200])


# ---------------------------------------------------------------- the protocol's errors
def test_create_upload_conflicts_and_finish_rules(server):
    service, name = objects(server), unique("rules")
    upload_id, expires = taskcluster.slugId(), taskcluster.stringDate(taskcluster.fromNow("1 day"))
    request = {"projectId": PROJECT, "uploadId": upload_id, "expires": expires, "proposedUploadMethods": {}}
    assert service.createUpload(name, request)["uploadMethod"] == {}
    assert service.createUpload(name, request)["expires"] == expires  # idempotent, echoed
    rest_error(lambda: service.createUpload(name, {**request, "uploadId": taskcluster.slugId()}), 409, "RequestConflict")
    rest_error(lambda: service.createUpload(unique("other"), request), 409, "RequestConflict")  # uploadId in use
    rest_error(lambda: service.finishUpload(name, {"projectId": PROJECT, "uploadId": taskcluster.slugId()}),
               409, "RequestConflict")
    rest_error(lambda: service.finishUpload(name, {"projectId": "other", "uploadId": upload_id}), 400, "InputError")
    failure = rest_error(lambda: service.finishUpload(name, {"projectId": PROJECT, "uploadId": upload_id}),
                         400, "InputError")  # nothing was uploaded
    assert "No data was uploaded" in failure.body["message"]
    rest_error(lambda: service.finishUpload(unique("none"), {"projectId": PROJECT, "uploadId": upload_id}),
               404, "ResourceNotFound")


def test_unfinished_and_missing_objects_are_not_found(server):
    service, name = objects(server), unique("pending")
    service.createUpload(name, {"projectId": PROJECT, "uploadId": taskcluster.slugId(),
                                "expires": taskcluster.stringDate(taskcluster.fromNow("1 day")),
                                "proposedUploadMethods": {"dataInline": {"contentType": "text/plain",
                                                                         "objectData": "aGk="}}})
    for call in (lambda: service.object(name),
                 lambda: service.startDownload(name, {"acceptDownloadMethods": {"getUrl": True}})):
        assert "not found" in rest_error(call, 404, "ResourceNotFound").body["message"]


def test_no_acceptable_download_method_is_406(server):
    name = unique("methods")
    upload(server, name, b"x")
    rest_error(lambda: objects(server).startDownload(name, {"acceptDownloadMethods": {}}), 406, "NoMatchingMethod")


@pytest.mark.parametrize("name, code", [("a/../b", "InputError"), ("../etc/passwd", "InputError"),
                                        ("a/./b", "InputError"), ("tab\there", "InvalidRequestArguments")])
def test_names_with_dot_segments_or_control_characters_are_400(server, name, code):
    request = {"projectId": PROJECT, "uploadId": taskcluster.slugId(),
               "expires": taskcluster.stringDate(taskcluster.fromNow("1 day")), "proposedUploadMethods": {}}
    rest_error(lambda: objects(server).createUpload(name, request), 400, code)


def test_scopes_bind_the_project_and_name(server):
    name = unique("scoped")
    creds = taskcluster.createTemporaryCredentials(
        "e2e-root", server.token, taskcluster.fromNow("-1 minute"), taskcluster.fromNow("1 hour"),
        [f"object:upload:{PROJECT}:{name}"])
    scoped = objects(server, creds)
    upload(server, name, b"mine", service=scoped)  # createUpload and finishUpload both allowed
    rest_error(lambda: upload(server, unique("not-mine"), b"x", service=scoped), 403, "InsufficientScopes")
    rest_error(lambda: scoped.object(name), 403, "InsufficientScopes")  # no object:download:<name>
    anonymous = taskcluster.Object({"rootUrl": server.root_url, "maxRetries": 0})
    rest_error(lambda: anonymous.startDownload(name, {"acceptDownloadMethods": {"getUrl": True}}),
               403, "InsufficientScopes")


def _put_url(server, name: str, length: int, upload_id: str) -> dict:
    request = {"projectId": PROJECT, "uploadId": upload_id,
               "expires": taskcluster.stringDate(taskcluster.fromNow("1 day")),
               "proposedUploadMethods": {"putUrl": {"contentType": "text/plain", "contentLength": length}}}
    return objects(server).createUpload(name, request)["uploadMethod"]["putUrl"]


def test_a_body_other_than_declared_cannot_be_finished(server):
    """A PUT shorter or longer than the contentLength proposed: refused at the
    PUT (file back end) or at finishUpload (S3); nothing is served."""
    for data in (b"short", b"far too long for the declared length"):
        name, upload_id = unique("length"), taskcluster.slugId()
        put = _put_url(server, name, 10, upload_id)
        headers = {k: v for k, v in put["headers"].items() if k != "Content-Length"}
        reply = requests.put(put["url"], data=iter([data]), headers=headers)  # chunked: no length to compare
        if server.back_end == "file":
            error(reply, 400 if len(data) < 10 else 413, "InputError" if len(data) < 10 else "InputTooLarge")
        rest_error(lambda: objects(server).finishUpload(name, {"projectId": PROJECT, "uploadId": upload_id}),
                   400, "InputError")
        rest_error(lambda: objects(server).object(name), 404, "ResourceNotFound")


@FILE_BACK_END  # S3 does not compute the hashes the file back end records
def test_finish_with_hashes_of_other_bytes_is_400_and_drops_them(server):
    name, upload_id, data = unique("hash"), taskcluster.slugId(), b"0123456789"
    put = _put_url(server, name, len(data), upload_id)
    assert requests.put(put["url"], data=data, headers=put["headers"]).status_code == 200
    wrong = {"sha256": hashlib.sha256(b"other").hexdigest()}
    failure = rest_error(lambda: objects(server).finishUpload(
        name, {"projectId": PROJECT, "uploadId": upload_id, "hashes": wrong}), 400, "InputError")
    assert "sha256" in failure.body["message"]
    assert requests.put(put["url"], data=data, headers=put["headers"]).status_code == 200  # a retry uploads again
    objects(server).finishUpload(name, {"projectId": PROJECT, "uploadId": upload_id,
                                        "hashes": {"sha256": hashlib.sha256(data).hexdigest()}})


@FILE_BACK_END  # S3 checks its own signatures
def test_forged_or_altered_put_urls_are_403(server):
    put = _put_url(server, unique("forged"), 4, taskcluster.slugId())
    for url in (put["url"].replace("sig=", "sig=0"), put["url"].replace("cl=4", "cl=5"),
                put["url"].replace("expires=", "expires=9")):
        body = error(requests.put(url, data=b"data", headers=put["headers"]), 403, "SignatureDoesNotMatch")
        assert body["requestInfo"]["method"] == "putBlob"
    error(requests.put(put["url"], data=b"data", headers={**put["headers"], "Content-Type": "text/html"}),
          403, "SignatureDoesNotMatch")
    # a GET with a PUT's signature is no download
    error(requests.get(put["url"]), 403, "SignatureDoesNotMatch")


@FILE_BACK_END  # the S3 back end's data plane is S3 itself (tests/storage/test_s3_store.py)
def test_gzip_bytes_are_kept_as_uploaded(server):
    """Content-Encoding survives the file back end's data plane both ways (s3 artifacts use it)."""
    blobs = FileBlobStore(server_data_dir(server) / "blobs", server.root_url, signing_key(server.token))
    body = gzip.compress(b"log line\n" * 1000)
    put = blobs.upload_url("public", "T/0/public/logs/live.log", "text/plain", int(taskcluster.fromNow("1 hour").timestamp() * 1000),
                           len(body), "gzip")
    assert requests.put(put.url, data=body, headers=put.headers).status_code == 200
    url = blobs.download_url("public", "T/0/public/logs/live.log", int(taskcluster.fromNow("1 hour").timestamp() * 1000))
    raw = requests.get(url, stream=True)
    assert raw.headers["Content-Encoding"] == "gzip" and raw.raw.read() == body
    assert requests.get(url).content == b"log line\n" * 1000  # a client that decodes gets the text


def server_data_dir(server):
    return server.args[0]


def test_api_bodies_with_content_encoding_still_decode(server):
    """With the data plane on the gateway's port, bodies are left encoded by the server; JSON calls decode them."""
    import mohawk

    url = server.root_url + "/api/queue/v1/tasks"
    body = gzip.compress(b'{"taskIds": []}')
    sender = mohawk.Sender({"id": "e2e-root", "key": server.token, "algorithm": "sha256"}, url, "POST",
                           content=b'{"taskIds": []}', content_type="application/json")  # the hash is of the decoded body, as before
    reply = requests.post(url, data=body, headers={"Authorization": sender.request_header, "Content-Encoding": "gzip",
                                                   "Content-Type": "application/json"})
    assert reply.status_code == 200, reply.text


@FILE_BACK_END  # a presigned S3 PUT stays valid until it expires (as upstream's)
def test_a_finished_upload_cannot_be_overwritten_through_its_put_url(server):
    name, upload_id, data = unique("sealed"), taskcluster.slugId(), b"0123456789"
    put = _put_url(server, name, len(data), upload_id)
    assert requests.put(put["url"], data=data, headers=put["headers"]).status_code == 200
    objects(server).finishUpload(name, {"projectId": PROJECT, "uploadId": upload_id,
                                        "hashes": {"sha256": hashlib.sha256(data).hexdigest()}})
    error(requests.put(put["url"], data=b"9876543210", headers=put["headers"]), 409, "RequestConflict")
    got, _ = taskcluster.download.downloadToBuf(name=name, objectService=objects(server))
    assert bytes(got) == data
