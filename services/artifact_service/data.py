"""The data plane of the file back end: signed PUT and GET of bytes under
`/api/journal/v1/blobs/<bucket>/<key>` (shared/storage/files.py). Bodies
are streamed to disk and served with sendfile (aiohttp's FileResponse, with
Range); nothing is held whole in memory. No Hawk: the URL is the capability."""

from urllib.parse import unquote

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from taskjournal.services.api_gateway.errors import ApiError, error_body
from taskjournal.services.api_gateway.responses import API_HEADERS, json_response
from taskjournal.shared.domain.time import now_ms
from taskjournal.shared.storage.files import BLOB_PREFIX, BlobRefused, FileBlobStore

CHUNK = 256 * 1024
UNENCODED = "identity"


def add_data_routes(app: web.Application, blobs: FileBlobStore) -> None:
    async def put(request: web.Request) -> web.StreamResponse:
        return await _answer(request, "putBlob", _put(request, blobs))

    async def get(request: web.Request) -> web.StreamResponse:
        return await _answer(request, "getBlob", _get(request, blobs))

    route = BLOB_PREFIX + "/{bucket}/{key:[\\s\\S]+}"
    app.router.add_route("PUT", route, put)
    app.router.add_route("GET", route, get)  # HEAD too


def _target(request: web.Request) -> tuple[str, str]:
    """Bucket and key from the raw path (a key's `/` arrives as %2F)."""
    tail = request.raw_path.partition("?")[0][len(BLOB_PREFIX) + 1:]
    bucket, _, key = tail.partition("/")
    return bucket, unquote(key)


async def _answer(request: web.Request, method: str, work) -> web.StreamResponse:
    try:
        return await work
    except BlobRefused as refused:
        err = ApiError(refused.code, refused.status, refused.message)
    except RequestPayloadError as failure:
        err = ApiError("MalformedPayload", 400, f"Failed to read the request body: {failure}")
    bucket, key = _target(request)
    body = error_body(err, method, {"bucket": bucket, "key": key}, {})
    return json_response(body, err.status, trace_id=request.headers.get("x-taskcluster-trace-id"))


async def _put(request: web.Request, blobs: FileBlobStore) -> web.StreamResponse:
    grant = blobs.verify("PUT", *_target(request), dict(request.query), now_ms())
    bucket, key = grant.bucket, grant.key
    if request.headers.get("Content-Type", "") != grant.content_type:
        raise BlobRefused(403, "SignatureDoesNotMatch",
                          f"This URL was signed for Content-Type {grant.content_type!r}, "
                          f"not {request.headers.get('Content-Type', '')!r}")
    encoding = request.headers.get("Content-Encoding", UNENCODED)
    if grant.content_encoding is not None and encoding != grant.content_encoding:
        raise BlobRefused(403, "SignatureDoesNotMatch",
                          f"This URL was signed for Content-Encoding {grant.content_encoding!r}, not {encoding!r}")
    if grant.content_length is not None and request.content_length not in (None, grant.content_length):
        raise BlobRefused(400, "InputError",
                          f"This URL takes {grant.content_length} bytes, not {request.content_length}")
    stored_encoding = None if encoding == UNENCODED else encoding
    await blobs.write(bucket, key, request.content.iter_chunked(CHUNK), grant.content_type, stored_encoding,
                      limit=grant.content_length, exact=grant.content_length is not None)
    return web.Response(status=200, headers={"Access-Control-Allow-Origin": "*"})


async def _get(request: web.Request, blobs: FileBlobStore) -> web.StreamResponse:
    grant = blobs.verify("GET", *_target(request), dict(request.query), now_ms())
    bucket, key = grant.bucket, grant.key
    info = blobs.stat_now(bucket, key)
    if info is None:
        raise BlobRefused(404, "ResourceNotFound", "Nothing is stored here (expired, or never uploaded)")
    headers = {"Content-Type": info.content_type or "application/octet-stream",
               "Access-Control-Allow-Origin": API_HEADERS["Access-Control-Allow-Origin"],
               "Cache-Control": "private, max-age=60"}
    if info.content_encoding:
        headers["Content-Encoding"] = info.content_encoding
    if info.content_type.startswith("text/html"):
        headers["Content-Disposition"] = "attachment"  # never rendered as a page of our origin
    return web.FileResponse(blobs.path(bucket, key), chunk_size=CHUNK, headers=headers)
