"""The S3-compatible back end (AWS, MinIO, Ceph, moto...) through aiobotocore
(docs/adr/0013-s3-library.md). Clients PUT and GET the bytes at presigned
URLs, straight to S3: the artifact-service only signs. URLs are signed
offline by botocore's own signer (the library aiobotocore wraps), so
signing needs no event loop and no round trip; the calls that do talk to S3
(write, stat, delete) go through one aiobotocore client per process."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

from . import BlobInfo, Bucket, SignedUpload
from .files import BlobRefused

PART_SIZE = 8 * 1024 * 1024  # multipart upload parts (S3's minimum is 5 MiB): the most a write holds in memory
MAX_URL_SECONDS = 7 * 24 * 3600  # SigV4's longest validity
DELETE_BATCH = 1000  # DeleteObjects' limit


class S3BlobStore:
    kind = "s3"

    def __init__(self, endpoint_url: str | None, region: str, buckets: dict[str, str]):
        self.endpoint_url, self.region, self.buckets = endpoint_url, region, buckets
        self.config = Config(signature_version="s3v4", s3={"addressing_style": "path"},
                             retries={"max_attempts": 3, "mode": "standard"})
        self.signer = botocore.session.get_session().create_client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=self.config)
        self._client: Any = None  # aiobotocore's S3 client, made on first use
        self._exit = AsyncExitStack()
        self._lock = asyncio.Lock()

    async def client(self) -> Any:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    from aiobotocore.session import get_session

                    self._client = await self._exit.enter_async_context(get_session().create_client(
                        "s3", endpoint_url=self.endpoint_url, region_name=self.region, config=self.config))
        return self._client

    async def seal(self, bucket: Bucket, key: str) -> None:
        pass  # a presigned PUT stays valid until it expires (as upstream's)

    async def close(self) -> None:
        await self._exit.aclose()
        self._client = None

    # ------------------------------------------------------------ signed URLs
    def upload_url(self, bucket: Bucket, key: str, content_type: str, expires_ms: int,
                   content_length: int | None = None, content_encoding: str | None = None) -> SignedUpload:
        params: dict[str, Any] = {"Bucket": self.buckets[bucket], "Key": key, "ContentType": content_type}
        headers = {"Content-Type": content_type}
        if content_length is not None:
            params["ContentLength"] = content_length
            headers["Content-Length"] = str(content_length)
        if content_encoding is not None:
            params["ContentEncoding"] = content_encoding
            headers["Content-Encoding"] = content_encoding
        url = self.signer.generate_presigned_url("put_object", Params=params, ExpiresIn=_seconds_until(expires_ms))
        return SignedUpload(url, headers, expires_ms)

    def download_url(self, bucket: Bucket, key: str, expires_ms: int) -> str:
        return self.signer.generate_presigned_url("get_object", Params={"Bucket": self.buckets[bucket], "Key": key},
                                                  ExpiresIn=_seconds_until(expires_ms))

    # ------------------------------------------------------------ bytes
    async def write(self, bucket: Bucket, key: str, chunks: AsyncIterator[bytes], content_type: str,
                    content_encoding: str | None = None, limit: int | None = None) -> int:
        """One PUT for small bodies, a multipart upload (part by part) for large ones."""
        s3, name = await self.client(), self.buckets[bucket]
        extra = {"ContentType": content_type, **({"ContentEncoding": content_encoding} if content_encoding else {})}
        buffer, size, upload = bytearray(), 0, None
        parts: list[dict] = []
        try:
            async for chunk in chunks:
                size += len(chunk)
                if limit is not None and size > limit:
                    raise BlobRefused(413, "InputTooLarge", f"The body is larger than the {limit} bytes declared")
                buffer += chunk
                if len(buffer) >= PART_SIZE:
                    if upload is None:
                        upload = (await s3.create_multipart_upload(Bucket=name, Key=key, **extra))["UploadId"]
                    parts.append(await self._part(s3, name, key, upload, len(parts) + 1, bytes(buffer)))
                    buffer.clear()
            if upload is None:
                await s3.put_object(Bucket=name, Key=key, Body=bytes(buffer), **extra)
                return size
            if buffer:
                parts.append(await self._part(s3, name, key, upload, len(parts) + 1, bytes(buffer)))
            await s3.complete_multipart_upload(Bucket=name, Key=key, UploadId=upload,
                                               MultipartUpload={"Parts": parts})
            return size
        except BaseException:
            if upload is not None:
                await asyncio.shield(s3.abort_multipart_upload(Bucket=name, Key=key, UploadId=upload))
            raise

    async def _part(self, s3, bucket: str, key: str, upload: str, number: int, body: bytes) -> dict:
        reply = await s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=body)
        return {"ETag": reply["ETag"], "PartNumber": number}

    async def stat(self, bucket: Bucket, key: str) -> BlobInfo | None:
        s3 = await self.client()
        try:
            head = await s3.head_object(Bucket=self.buckets[bucket], Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return BlobInfo(head["ContentLength"], head.get("ContentType", "application/octet-stream"),
                        head.get("ContentEncoding"))

    async def delete(self, bucket: Bucket, keys: list[str]) -> None:
        s3 = await self.client()
        for start in range(0, len(keys), DELETE_BATCH):
            batch = [{"Key": key} for key in keys[start:start + DELETE_BATCH]]
            await s3.delete_objects(Bucket=self.buckets[bucket], Delete={"Objects": batch, "Quiet": True})


def _seconds_until(expires_ms: int) -> int:
    """A presigned URL's lifetime: until `expires_ms`, rounded up (at least 1 s, at most SigV4's 7 days)."""
    return max(1, min(MAX_URL_SECONDS, -(-(expires_ms - int(time.time() * 1000)) // 1000)))
