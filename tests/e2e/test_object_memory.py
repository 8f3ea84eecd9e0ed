"""A 200 MB object streamed up and down through the file back end: the
server's memory stays flat (the issue's bound: within 50 MB), and the bytes
come back as sent."""

import asyncio
import hashlib
import sys
from pathlib import Path

import aiohttp
import pytest
import taskcluster

from tests.e2e.conftest import Server

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from objects import PeakRss  # noqa: E402  (the benchmark's sampler)

SIZE = 200 * 1024 * 1024
CHUNK = 1024 * 1024
BOUND_MB = 50


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("memory"), None)
    yield srv
    srv.stop()


def pattern(index: int) -> bytes:
    return bytes([index % 251]) * CHUNK


async def body():
    for index in range(SIZE // CHUNK):
        yield pattern(index)


def test_a_200_mb_object_streams_with_flat_memory(server):
    service = taskcluster.Object(server.options())
    name, upload_id = "memory/200mb", taskcluster.slugId()
    put = service.createUpload(name, {
        "projectId": "memory", "uploadId": upload_id, "expires": taskcluster.stringDate(taskcluster.fromNow("1 day")),
        "proposedUploadMethods": {"putUrl": {"contentType": "application/octet-stream", "contentLength": SIZE}}},
    )["uploadMethod"]["putUrl"]
    expected = hashlib.sha256()
    for index in range(SIZE // CHUNK):
        expected.update(pattern(index))

    async def upload_then_download() -> str:
        async with aiohttp.ClientSession() as http:
            async with http.put(put["url"], data=body(), headers=put["headers"]) as reply:
                assert reply.status == 200, await reply.text()
            service.finishUpload(name, {"projectId": "memory", "uploadId": upload_id,
                                        "hashes": {"sha256": expected.hexdigest()}})
            url = service.startDownload(name, {"acceptDownloadMethods": {"getUrl": True}})["url"]
            got = hashlib.sha256()
            async with http.get(url) as reply:
                async for chunk in reply.content.iter_chunked(CHUNK):
                    got.update(chunk)
            return got.hexdigest()

    with PeakRss(server.process.pid) as memory:
        assert asyncio.run(upload_then_download()) == expected.hexdigest()
    assert memory.growth_mb < BOUND_MB, f"the server grew by {memory.growth_mb:.0f} MB"
