"""The file back end: signed URLs that cannot be forged, altered or used late,
and writes that are streamed, hashed and leave nothing half-written."""

import hashlib
from urllib.parse import parse_qsl, urlsplit

import pytest

from taskjournal.shared.storage.files import BLOB_PREFIX, BlobRefused, FileBlobStore, signing_key

NOW = 1_800_000_000_000


@pytest.fixture
def store(tmp_path):
    return FileBlobStore(tmp_path / "blobs", "http://example.test:9", signing_key("root-secret"))


def parts(url: str) -> tuple[str, dict]:
    split = urlsplit(url)
    return split.path, dict(parse_qsl(split.query, keep_blank_values=True))


async def chunks(*pieces: bytes):
    for piece in pieces:
        yield piece


def test_upload_url_carries_what_it_grants(store):
    signed = store.upload_url("private", "t/a/0/x y", "text/plain", NOW + 1000, 5, "gzip")
    path, query = parts(signed.url)
    assert path == BLOB_PREFIX + "/private/t%2Fa%2F0%2Fx%20y"
    assert signed.headers == {"Content-Type": "text/plain", "Content-Length": "5", "Content-Encoding": "gzip"}
    grant = store.verify("PUT", "private", "t/a/0/x y", query, NOW)
    assert (grant.content_type, grant.content_length, grant.content_encoding) == ("text/plain", 5, "gzip")


@pytest.mark.parametrize("change", [
    {"cl": "999999"}, {"ct": "text/html"}, {"expires": str(NOW + 10**9)}, {"sig": "0" * 64}, {"ce": "br"}])
def test_altered_put_url_is_refused(store, change):
    _, query = parts(store.upload_url("private", "k", "text/plain", NOW + 1000, 5).url)
    with pytest.raises(BlobRefused) as refused:
        store.verify("PUT", "private", "k", {**query, **change}, NOW)
    assert refused.value.status == 403


def test_url_for_one_key_or_method_does_not_open_another(store):
    _, query = parts(store.download_url("private", "k", NOW + 1000))
    for method, bucket, key in (("PUT", "private", "k"), ("GET", "private", "k2"), ("GET", "public", "k")):
        with pytest.raises(BlobRefused):
            store.verify(method, bucket, key, query, NOW)


def test_a_url_signed_with_another_secret_is_refused(store, tmp_path):
    other = FileBlobStore(tmp_path / "other", "http://example.test:9", signing_key("another-secret"))
    _, query = parts(other.download_url("private", "k", NOW + 1000))
    with pytest.raises(BlobRefused) as refused:
        store.verify("GET", "private", "k", query, NOW)
    assert refused.value.code == "SignatureDoesNotMatch"


def test_expired_url_is_refused(store):
    _, query = parts(store.download_url("private", "k", NOW))
    store.verify("GET", "private", "k", query, NOW)
    with pytest.raises(BlobRefused) as refused:
        store.verify("GET", "private", "k", query, NOW + 1)
    assert (refused.value.status, refused.value.code) == (403, "RequestExpired")


async def test_write_stat_delete(store):
    size = await store.write("public", "public/logs/live.log", chunks(b"hello ", b"world"), "text/plain", "gzip")
    info = await store.stat("public", "public/logs/live.log")
    assert size == info.size == 11
    assert (info.content_type, info.content_encoding) == ("text/plain", "gzip")
    assert info.hashes["sha256"] == hashlib.sha256(b"hello world").hexdigest()
    assert store.path("public", "public/logs/live.log").read_bytes() == b"hello world"
    assert await store.stat("private", "public/logs/live.log") is None
    await store.delete("public", ["public/logs/live.log", "never-written"])
    assert await store.stat("public", "public/logs/live.log") is None


async def test_names_never_become_paths(store, tmp_path):
    await store.write("private", "../../escape", chunks(b"x"), "text/plain")
    path = store.path("private", "../../escape")
    assert path.resolve().is_relative_to((tmp_path / "blobs").resolve())
    assert not (tmp_path / "escape").exists()


async def test_a_write_over_its_limit_leaves_nothing(store):
    await store.write("private", "k", chunks(b"old"), "text/plain")
    with pytest.raises(BlobRefused) as refused:
        await store.write("private", "k", chunks(b"12", b"34"), "text/plain", limit=3)
    assert refused.value.status == 413
    assert store.path("private", "k").read_bytes() == b"old"
    assert sorted(p.name for p in store.path("private", "k").parent.iterdir()) == [
        store.path("private", "k").name, store.path("private", "k").name + ".json"]


async def test_a_failing_stream_leaves_nothing(store):
    async def broken():
        yield b"part"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.write("private", "k", broken(), "text/plain")
    assert await store.stat("private", "k") is None
    assert list(store.path("private", "k").parent.iterdir()) == []


async def test_sealed_bytes_cannot_be_replaced(store):
    await store.write("private", "k", chunks(b"final"), "text/plain")
    await store.seal("private", "k")
    with pytest.raises(BlobRefused) as refused:
        await store.write("private", "k", chunks(b"other"), "text/plain")
    assert refused.value.status == 409
    assert store.path("private", "k").read_bytes() == b"final"
    await store.delete("private", ["k"])
    await store.write("private", "k", chunks(b"new object"), "text/plain")  # a deleted key is free again
