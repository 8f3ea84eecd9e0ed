"""The S3 back end against a real S3 API on loopback (moto's standalone
server): presigned PUT and GET done by a plain HTTP client, streamed and
multipart writes, stat and delete."""

import aiohttp
import pytest

from taskjournal.shared.domain.time import now_ms
from taskjournal.shared.storage import s3 as s3_module
from taskjournal.shared.storage.files import BlobRefused
from taskjournal.shared.storage.s3 import S3BlobStore
from tests.moto_support import bucket_names


@pytest.fixture
async def store(moto):
    public, private = bucket_names()
    moto.create_buckets(public, private)
    blobs = S3BlobStore(moto.url, "us-east-1", {"public": public, "private": private})
    yield blobs
    await blobs.close()


async def chunks(*pieces: bytes):
    for piece in pieces:
        yield piece


async def test_presigned_put_then_get(store):
    signed = store.upload_url("public", "T/0/public/logs/live.log", "text/plain", now_ms() + 60_000, 5, "gzip")
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        async with http.put(signed.url, data=b"hello", headers=signed.headers) as reply:
            assert reply.status == 200, await reply.text()
        async with http.get(store.download_url("public", "T/0/public/logs/live.log", now_ms() + 60_000)) as reply:
            assert reply.status == 200
            assert await reply.read() == b"hello"
            assert reply.headers["Content-Type"] == "text/plain"
            assert reply.headers["Content-Encoding"] == "gzip"
    info = await store.stat("public", "T/0/public/logs/live.log")
    assert (info.size, info.content_type, info.content_encoding) == (5, "text/plain", "gzip")


def test_put_url_signs_the_headers_it_requires(store):
    """S3 refuses a PUT whose signed headers differ (moto does not check signatures, so the test
    reads what is signed)."""
    from urllib.parse import parse_qs, urlsplit

    signed = store.upload_url("private", "k", "text/plain", now_ms() + 60_000, 5, "gzip")
    query = parse_qs(urlsplit(signed.url).query)
    assert set(query["X-Amz-SignedHeaders"][0].split(";")) >= {"content-type", "content-encoding", "host"}
    assert 1 <= int(query["X-Amz-Expires"][0]) <= 61


async def test_small_and_multipart_writes(store, monkeypatch):
    monkeypatch.setattr(s3_module, "PART_SIZE", 5 * 1024 * 1024)
    piece = bytes(range(256)) * 4096  # 1 MiB
    assert await store.write("private", "small", chunks(b"abc"), "text/plain") == 3
    assert await store.write("private", "large", chunks(*[piece] * 11), "application/octet-stream") == 11 * len(piece)
    assert (await store.stat("private", "large")).size == 11 * len(piece)
    async with aiohttp.ClientSession() as http:
        async with http.get(store.download_url("private", "large", now_ms() + 60_000)) as reply:
            assert await reply.read() == piece * 11


async def test_write_over_limit_keeps_nothing(store):
    with pytest.raises(BlobRefused):
        await store.write("private", "k", chunks(b"12", b"34"), "text/plain", limit=3)
    assert await store.stat("private", "k") is None


async def test_delete(store):
    await store.write("private", "a", chunks(b"1"), "text/plain")
    await store.delete("private", ["a", "missing"])
    assert await store.stat("private", "a") is None
