"""`taskjournal stack`: the artifact-service is its own process on its own
port; the api-gateway forwards the object service's JSON calls to it and the
bytes go straight to the data URLs (the artifact-service's, or S3's), never
through the gateway. The official helpers work unchanged at the root URL."""

import os
from urllib.parse import urlsplit

import pytest
import taskcluster
import taskcluster.download
import taskcluster.upload

from taskjournal.services.bootstrap import ROLES
from tests.e2e.conftest import Server
from tests.support.server import free_ports
from tests.moto_support import bucket_names


class StackServer(Server):
    """Six processes on a loaded machine take longer than one to listen."""

    def _wait_ready(self) -> None:
        # the fixture chose the port: one of six consecutive free ones, as the stack takes them
        self.port, self.root_url = int(self.env["TASKJOURNAL_PORT"]), self.env["TASKJOURNAL_ROOT_URL"]
        self.wait_for(self.root_url + self.ready_path, patience_s=90)


@pytest.fixture(scope="module", params=["file", "s3"])
def stack(request, tmp_path_factory, module_postgres_url, amqp_url):
    port = free_ports(len(ROLES))
    env = {"TASKJOURNAL_AMQP_URL": amqp_url, "TASKJOURNAL_PORT": str(port),
           "TASKJOURNAL_ROOT_URL": f"http://127.0.0.1:{port}"}
    if request.param == "s3":
        moto = request.getfixturevalue("moto")
        public, private = bucket_names()
        moto.create_buckets(public, private)
        env.update(TASKJOURNAL_ARTIFACT_STORE="s3", TASKJOURNAL_S3_ENDPOINT_URL=moto.url,
                   TASKJOURNAL_S3_PUBLIC_BUCKET=public, TASKJOURNAL_S3_PRIVATE_BUCKET=private)
    srv = StackServer(tmp_path_factory.mktemp("stack"), module_postgres_url, command=("stack",), **env)
    srv.back_end = request.param
    srv.wait_for(srv.root_url + "/api/object/v1/ping", patience_s=60)  # forwarded once the artifact-service listens
    yield srv
    srv.stop()


def test_helpers_work_through_the_stack(stack):
    service = taskcluster.Object(stack.options())
    name, data = f"stack/{os.urandom(4).hex()}", os.urandom(100_000)
    taskcluster.upload.uploadFromBuf(projectId="stack", name=name, contentType="text/plain", contentLength=len(data),
                                     expires=taskcluster.fromNow("1 day"), data=data, objectService=service)
    got, content_type = taskcluster.download.downloadToBuf(name=name, objectService=service)
    assert (bytes(got), content_type) == (data, "text/plain")


def test_bytes_never_go_to_the_gateway(stack):
    service = taskcluster.Object(stack.options())
    reply = service.createUpload(f"stack/{os.urandom(4).hex()}", {
        "projectId": "stack", "uploadId": taskcluster.slugId(),
        "expires": taskcluster.stringDate(taskcluster.fromNow("1 day")),
        "proposedUploadMethods": {"putUrl": {"contentType": "text/plain", "contentLength": 10}}})
    put_url = urlsplit(reply["uploadMethod"]["putUrl"]["url"])
    assert put_url.port != urlsplit(stack.root_url).port


def test_object_errors_come_back_through_the_gateway(stack):
    service = taskcluster.Object(stack.options())
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as failure:
        service.object("stack/never-uploaded")
    assert failure.value.status_code == 404 and failure.value.body["code"] == "ResourceNotFound"
