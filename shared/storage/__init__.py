"""Where artifact and object bytes live: one port, `BlobStore`, with a
file-system back end (the embedded default, bytes served and received by the
artifact-service through signed URLs) and an S3-compatible one. Chosen by
TASKJOURNAL_ARTIFACT_STORE (`file` | `s3`)."""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from taskjournal.shared.config import Settings

Bucket = Literal["public", "private"]  # s3 artifacts: names under public/ go to the public bucket


@dataclass(frozen=True)
class SignedUpload:
    url: str  # a capability: PUT the bytes here, no Hawk
    headers: dict[str, str]  # the headers the PUT must carry exactly
    expires_ms: int  # after this the URL is refused


@dataclass(frozen=True)
class BlobInfo:
    size: int
    content_type: str
    content_encoding: str | None
    hashes: dict[str, str] = field(default_factory=dict)  # computed while written, where the back end can


class BlobStore(Protocol):
    kind: str  # "file" or "s3"

    def upload_url(self, bucket: Bucket, key: str, content_type: str, expires_ms: int,
                   content_length: int | None = None, content_encoding: str | None = None) -> SignedUpload:
        """A signed PUT URL for `key`."""

    def download_url(self, bucket: Bucket, key: str, expires_ms: int) -> str:
        """A signed GET URL for `key` (a plain URL for a public bucket that allows it)."""

    async def write(self, bucket: Bucket, key: str, chunks: AsyncIterator[bytes], content_type: str,
                    content_encoding: str | None = None, limit: int | None = None) -> int:
        """Store the bytes (streamed, never whole in memory); the size written.
        More than `limit` bytes: nothing is kept, an error is raised."""

    async def stat(self, bucket: Bucket, key: str) -> BlobInfo | None:
        """What is stored under `key`, or None."""

    async def delete(self, bucket: Bucket, keys: list[str]) -> None:
        """Remove the keys (missing ones are no error)."""

    async def seal(self, bucket: Bucket, key: str) -> None:
        """The bytes under `key` are final: later writes are refused where the
        back end can (file); S3 keeps honouring an unexpired PUT URL."""

    async def close(self) -> None:
        """Release connections (S3 clients)."""


def open_blob_store(settings: "Settings") -> BlobStore:
    """The configured back end (TASKJOURNAL_ARTIFACT_STORE). Signed file URLs
    are keyed by the root secret, so it must be set (bootstrap checks)."""
    if settings.artifact_store == "s3":
        from .s3 import S3BlobStore

        return S3BlobStore(settings.s3_endpoint_url, settings.s3_region,
                           {"public": settings.s3_public_bucket or "", "private": settings.s3_private_bucket or ""})
    from .files import FileBlobStore, signing_key

    if not settings.root_access_token:
        raise ValueError("the file blob store signs its URLs with a key derived from the root access token")
    return FileBlobStore(settings.data_dir / "blobs", settings.public_artifact_url,
                         signing_key(settings.root_access_token))


OBJECT_BUCKET: Bucket = "private"


def object_key(name: str) -> str:
    """Where the object service keeps an object's bytes. s3 artifacts live
    under `<taskId>/...` (22 characters, no `objects`), so the two never meet."""
    return "objects/" + name


SIMPLE_URL_MS = 30 * 60 * 1000  # a `simple` download URL is good for 30 minutes (upstream's)


def object_download_url(blobs: BlobStore, name: str, now_ms: int) -> str:
    """A plain URL to a finished object's bytes, needing no credentials: the
    object service's `simple` method and `download` redirect, and what the
    queue's getArtifact redirects to for object artifacts (upstream asks the
    object service for exactly this)."""
    return blobs.download_url(OBJECT_BUCKET, object_key(name), now_ms + SIMPLE_URL_MS)
