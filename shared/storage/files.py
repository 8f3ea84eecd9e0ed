"""The file-system back end: bytes under TASKJOURNAL_DATA_DIR/blobs, received
and served by the artifact-service itself through signed URLs.

A URL is a capability: `<artifact URL>/api/journal/v1/blobs/<bucket>/<key>`
with the query `expires` (epoch ms), for a PUT also the headers it must carry
(`ct`, `cl`, `ce`), and `sig`, an HMAC-SHA256 over all of it keyed by a secret
derived from the root access token. `/api/journal/` is no upstream service,
so the path cannot collide with an upstream route.

On disk a blob is named by the SHA-256 of its bucket and key (no name a
caller chooses, `..` included, ever becomes a path), beside a small JSON file
with its content type, encoding, size and the hashes computed while it was
written. Writes go to a temporary file renamed into place: a reader sees
the old bytes or the new ones, and a failed upload leaves nothing behind."""

import asyncio
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import cast
from urllib.parse import quote, urlencode

import orjson

from . import BlobInfo, Bucket, SignedUpload

BLOB_PREFIX = "/api/journal/v1/blobs"
BUCKETS = ("public", "private")
HASHED = ("sha256",)  # checked against finishUpload's hashes; the clients always send sha256 (sha512 would cost 3x its time)


class BlobRefused(Exception):
    """A data-plane request that cannot be served: status, Taskcluster code, message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class PutGrant:
    """What a verified signed PUT may store."""

    bucket: Bucket
    key: str
    content_type: str
    content_length: int | None
    content_encoding: str | None


def signing_key(root_access_token: str) -> bytes:
    """The data URLs' secret, derived from the root secret (so every replica agrees)."""
    return hmac.new(root_access_token.encode(), b"taskjournal blob urls", hashlib.sha256).digest()


class FileBlobStore:
    kind = "file"

    def __init__(self, root: Path, base_url: str, key: bytes, writers: int = 8):
        self.root = Path(root)
        self.base_url = base_url.rstrip("/")
        self.key = key
        self._mac = hmac.new(key, digestmod=hashlib.sha256)  # keyed once; each signature copies it
        # write() hashes and writes each chunk on a thread while the loop receives the next one
        # (file writes and hashlib release the GIL): the disk and the socket work at once
        self._writers = ThreadPoolExecutor(writers, thread_name_prefix="blob-writer")

    # ------------------------------------------------------------ signed URLs
    def upload_url(self, bucket: Bucket, key: str, content_type: str, expires_ms: int,
                   content_length: int | None = None, content_encoding: str | None = None) -> SignedUpload:
        query = {"expires": str(expires_ms), "ct": content_type}
        headers = {"Content-Type": content_type}
        if content_length is not None:
            query["cl"] = str(content_length)
            headers["Content-Length"] = str(content_length)
        if content_encoding is not None:
            query["ce"] = content_encoding
            headers["Content-Encoding"] = content_encoding
        query["sig"] = self._sign("PUT", bucket, key, query)
        return SignedUpload(self._url(bucket, key, query), headers, expires_ms)

    def download_url(self, bucket: Bucket, key: str, expires_ms: int) -> str:
        query = {"expires": str(expires_ms)}
        query["sig"] = self._sign("GET", bucket, key, query)
        return self._url(bucket, key, query)

    def _url(self, bucket: str, key: str, query: dict) -> str:
        return f"{self.base_url}{BLOB_PREFIX}/{bucket}/{quote(key, safe='')}?{urlencode(query)}"

    def _sign(self, method: str, bucket: str, key: str, query: dict) -> str:
        fields = [method, bucket, key] + [f"{name}={query.get(name, '')}" for name in ("expires", "ct", "cl", "ce")]
        mac = self._mac.copy()
        mac.update("\n".join(fields).encode())
        return mac.hexdigest()

    def verify(self, method: str, bucket_name: str, key: str, query: dict, now_ms: int) -> PutGrant:
        """The grant of a signed URL, or BlobRefused (403: forged, altered or expired)."""
        if bucket_name not in BUCKETS:
            raise BlobRefused(404, "ResourceNotFound", f"No bucket {bucket_name!r}")
        bucket = cast(Bucket, bucket_name)
        signed = {name: query[name] for name in ("expires", "ct", "cl", "ce") if name in query}
        given = query.get("sig", "")
        if not hmac.compare_digest(self._sign(method, bucket, key, signed), given):
            raise BlobRefused(403, "SignatureDoesNotMatch",
                              f"The signature of this {method} URL does not match: it was altered or not issued here")
        try:
            expires = int(signed["expires"])
            length = int(signed["cl"]) if "cl" in signed else None
        except (KeyError, ValueError):
            raise BlobRefused(403, "SignatureDoesNotMatch", "The URL's signed fields are malformed") from None
        if expires < now_ms:
            raise BlobRefused(403, "RequestExpired", f"This {method} URL expired; ask for a new one")
        return PutGrant(bucket, key, signed.get("ct", ""), length, signed.get("ce"))

    # ------------------------------------------------------------ bytes
    def path(self, bucket: Bucket, key: str) -> Path:
        digest = hashlib.sha256(f"{bucket}\n{key}".encode()).hexdigest()
        return self.root / bucket / digest[:2] / digest

    def _meta_path(self, path: Path) -> Path:
        return path.with_name(path.name + ".json")

    async def write(self, bucket: Bucket, key: str, chunks: AsyncIterator[bytes], content_type: str,
                    content_encoding: str | None = None, limit: int | None = None, exact: bool = False) -> int:
        """Stream `chunks` to disk; more than `limit` bytes (with `exact`, any
        other number) raise BlobRefused and nothing is kept. Returns the size written."""
        path = self.path(bucket, key)
        self._refuse_if_sealed(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
        hashers = {name: hashlib.new(name) for name in HASHED}
        size, loop, writing = 0, asyncio.get_running_loop(), None

        def absorb(file, chunk: bytes) -> None:
            file.write(chunk)
            for hasher in hashers.values():
                hasher.update(chunk)

        try:
            with open(temporary, "wb") as file:
                try:
                    async for chunk in chunks:
                        size += len(chunk)
                        if limit is not None and size > limit:
                            raise BlobRefused(413, "InputTooLarge",
                                              f"The body is larger than the {limit} bytes declared")
                        if writing is not None:
                            await writing  # at most one chunk on the thread, one being received
                        writing = loop.run_in_executor(self._writers, absorb, file, chunk)
                finally:
                    if writing is not None:
                        await asyncio.shield(writing)  # never close the file under a running write
            if exact and size != limit:
                raise BlobRefused(400, "InputError", f"The body has {size} bytes, not the {limit} declared")
            meta = {"key": key, "size": size, "contentType": content_type, "contentEncoding": content_encoding,
                    "hashes": {name: h.hexdigest() for name, h in hashers.items()}, "written": int(time.time() * 1000)}
            meta_temporary = temporary.with_name(temporary.name + ".json")
            meta_temporary.write_bytes(orjson.dumps(meta))
            self._refuse_if_sealed(path)  # sealed while this body was on its way
            os.replace(meta_temporary, self._meta_path(path))
            os.replace(temporary, path)
        except BaseException:
            _unlink(temporary)
            _unlink(temporary.with_name(temporary.name + ".json"))
            raise
        return size

    def _refuse_if_sealed(self, path: Path) -> None:
        try:
            sealed = orjson.loads(self._meta_path(path).read_bytes()).get("sealed")
        except (OSError, ValueError):
            return
        if sealed:
            raise BlobRefused(409, "RequestConflict", "These bytes are final (the upload was finished); "
                                                      "they cannot be replaced")

    async def seal(self, bucket: Bucket, key: str) -> None:
        meta_path = self._meta_path(self.path(bucket, key))
        try:
            meta = orjson.loads(meta_path.read_bytes())
        except (OSError, ValueError):
            return
        temporary = meta_path.with_name(f".{meta_path.name}.{secrets.token_hex(6)}")
        temporary.write_bytes(orjson.dumps({**meta, "sealed": True}))
        os.replace(temporary, meta_path)

    async def stat(self, bucket: Bucket, key: str) -> BlobInfo | None:
        return self.stat_now(bucket, key)

    def stat_now(self, bucket: Bucket, key: str) -> BlobInfo | None:
        path = self.path(bucket, key)
        try:
            meta = orjson.loads(self._meta_path(path).read_bytes())
            size = path.stat().st_size
        except (OSError, ValueError):
            return None
        return BlobInfo(size, meta["contentType"], meta.get("contentEncoding"), meta.get("hashes") or {})

    async def delete(self, bucket: Bucket, keys: list[str]) -> None:
        for key in keys:
            path = self.path(bucket, key)
            _unlink(path)
            _unlink(self._meta_path(path))

    async def close(self) -> None:
        self._writers.shutdown(wait=False)


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
