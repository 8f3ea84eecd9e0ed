"""Stand-ins for what the objects branch builds (the storage back ends and the
object service's Journal commands), so the queue's artifact endpoints can be
tested before it is merged. Each is installed only where the real one is
missing (see tests/e2e/artifact_server.py)."""

from collections.abc import AsyncIterator
from urllib.parse import quote

from taskjournal.shared.storage import BlobInfo, SignedUpload


class MemoryBlobStore:
    """The BlobStore port in memory; URLs point at a path nothing serves."""

    kind = "memory"

    def __init__(self, root_url: str = "http://blobs.invalid"):
        self.root_url = root_url.rstrip("/")
        self.blobs: dict[tuple[str, str], tuple[bytes, BlobInfo]] = {}
        self.deleted: list[tuple[str, str]] = []

    def _url(self, bucket: str, key: str) -> str:
        return f"{self.root_url}/fake-blobs/{bucket}/{quote(key)}"

    def upload_url(self, bucket, key, content_type, expires_ms, content_length=None, content_encoding=None):
        return SignedUpload(f"{self._url(bucket, key)}?put&expires={expires_ms}", {"Content-Type": content_type},
                            expires_ms)

    def download_url(self, bucket, key, expires_ms):
        return f"{self._url(bucket, key)}?expires={expires_ms}"

    async def write(self, bucket, key, chunks: AsyncIterator[bytes], content_type, content_encoding=None) -> int:
        data = b"".join([chunk async for chunk in chunks])
        self.blobs[(bucket, key)] = (data, BlobInfo(len(data), content_type, content_encoding))
        return len(data)

    async def stat(self, bucket, key):
        found = self.blobs.get((bucket, key))
        return found[1] if found else None

    async def delete(self, bucket, keys):
        for key in keys:
            self.blobs.pop((bucket, key), None)
            self.deleted.append((bucket, key))
