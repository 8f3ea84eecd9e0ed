"""The artifact-service's expiry round: expired objects leave the log, the
read model and the file back end; younger ones keep their bytes."""

import pytest

from taskjournal.services.artifact_service.expiry import expire_once
from taskjournal.shared.domain.time import now_ms
from taskjournal.shared.storage import OBJECT_BUCKET, object_key
from taskjournal.shared.storage.files import FileBlobStore, signing_key


async def chunks(data: bytes):
    yield data


@pytest.mark.parametrize("journal", ["sqlite"], indirect=True)
async def test_expired_objects_lose_their_bytes(journal, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    blobs = FileBlobStore(tmp_path / "blobs", "http://x", signing_key("k"))
    now = now_ms()
    for name, expires in (("old", now - 1), ("young", now + 3_600_000)):
        upload_id = {"old": "nNUu9nkRSNKYp2oRvXDNvA", "young": "vTfSfQdYQIKRbzPjMwT9zw"}[name]
        journal.create_upload(name, "p", upload_id, expires, {}, now - 10)
        await blobs.write(OBJECT_BUCKET, object_key(name), chunks(b"bytes"), "text/plain")
        journal.finish_upload(name, "p", upload_id, {}, now - 5)
    with ThreadPoolExecutor(2) as executor:
        assert await expire_once(journal, executor, blobs) == 1
    assert journal.object("old") is None and await blobs.stat(OBJECT_BUCKET, object_key("old")) is None
    assert journal.object("young") is not None and await blobs.stat(OBJECT_BUCKET, object_key("young")) is not None
