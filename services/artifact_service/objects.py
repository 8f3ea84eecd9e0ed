"""The object service's handlers (spec §9): createUpload with dataInline and
putUrl, finishUpload (the stored bytes checked against what was declared),
startDownload with getUrl and simple, metadata and the simple download."""

import base64
import binascii

from aiohttp import web

from taskjournal.services.api_gateway.context import Context
from taskjournal.services.api_gateway.errors import ApiError
from taskjournal.shared.domain.errors import InputError, ResourceNotFound
from taskjournal.shared.domain.object import Object
from taskjournal.shared.domain.time import format_ms, parse_ms
from taskjournal.shared.storage import OBJECT_BUCKET, BlobStore, object_download_url, object_key

PUT_URL_MS = 45 * 60 * 1000  # upstream: the PUT URL is advertised for 45 minutes...
PUT_URL_GRACE_MS = 10 * 1000  # ...and honoured 10 s longer
GET_URL_MS = 60 * 1000  # getUrl: advertised 60 s, honoured 120 s
MAX_NAME = 1024


def _check_name(name: str) -> None:
    """Printable ASCII (upstream's object names); no `.`/`..` segment, which a
    file system or a proxy in front could take for a path step."""
    if not name or len(name) > MAX_NAME or any(not 0x20 <= ord(c) <= 0x7E for c in name):
        raise InputError(f"Object names are 1 to {MAX_NAME} printable ASCII characters, not {name!r}")
    if any(part in (".", "..") for part in name.split("/")):
        raise InputError(f"Object names may not contain `.` or `..` segments: {name!r}")


def _blobs(ctx: Context) -> BlobStore:
    blobs = ctx.services.blobs
    if blobs is None:  # ObjectServiceParts always has one
        raise RuntimeError("the object service runs without a blob store")
    return blobs


def _not_found(name: str) -> ResourceNotFound:
    return ResourceNotFound(f'Object "{name}" not found')


async def create_upload(ctx: Context):
    name, body = ctx.params["name"], ctx.body
    ctx.authorize(projectId=body["projectId"])
    _check_name(name)
    services, now = ctx.services, ctx.services.clock()
    journal = services.journal
    await ctx.run(journal.create_upload, name, body["projectId"], body["uploadId"], parse_ms(body["expires"]),
                  body.get("hashes", {}), now)
    proposed = body["proposedUploadMethods"]
    method = {}
    if "dataInline" in proposed:
        method = await _store_inline(ctx, name, body["uploadId"], proposed["dataInline"])
    elif "putUrl" in proposed:
        method = await _put_url(ctx, name, body["uploadId"], proposed["putUrl"], now)
    return {"projectId": body["projectId"], "uploadId": body["uploadId"], "expires": body["expires"],
            "uploadMethod": method}


async def _store_inline(ctx: Context, name: str, upload_id: str, inline: dict) -> dict:
    try:
        data = base64.b64decode(inline["objectData"] + "=" * (-len(inline["objectData"]) % 4))
    except (binascii.Error, ValueError):
        raise InputError("Invalid base64 objectData") from None
    await ctx.run(ctx.services.journal.negotiate_upload, name, upload_id, inline["contentType"], len(data))

    async def one_chunk():
        yield data

    await _blobs(ctx).write(OBJECT_BUCKET, object_key(name), one_chunk(), inline["contentType"])
    return {"dataInline": True}


async def _put_url(ctx: Context, name: str, upload_id: str, put: dict, now: int) -> dict:
    if put["contentLength"] < 0:
        raise InputError("contentLength must not be negative")
    await ctx.run(ctx.services.journal.negotiate_upload, name, upload_id, put["contentType"], put["contentLength"])
    signed = _blobs(ctx).upload_url(OBJECT_BUCKET, object_key(name), put["contentType"],
                                           now + PUT_URL_MS + PUT_URL_GRACE_MS, put["contentLength"], "identity")
    return {"putUrl": {"url": signed.url, "expires": format_ms(now + PUT_URL_MS), "headers": signed.headers}}


async def finish_upload(ctx: Context):
    name, body = ctx.params["name"], ctx.body
    ctx.authorize(projectId=body["projectId"])
    hashes = body.get("hashes", {})
    found: Object | None = await ctx.run(ctx.services.journal.object, name)
    if found is None:
        raise _not_found(name)
    if not found.check_finish(body["projectId"], body["uploadId"], hashes):
        await _check_stored_bytes(ctx, found, hashes)
        await _blobs(ctx).seal(OBJECT_BUCKET, object_key(name))  # no PUT replaces what was checked
        await ctx.run(ctx.services.journal.finish_upload, name, body["projectId"], body["uploadId"], hashes,
                      ctx.services.clock())
    return {}


async def _check_stored_bytes(ctx: Context, found: Object, hashes: dict) -> None:
    """The bytes stored are those declared: the length proposed, and the
    hashes given where the back end computed them while storing. A mismatch
    deletes the bytes (a retry uploads them again) and is a 400."""
    blobs, key = _blobs(ctx), object_key(found.name)
    info = await blobs.stat(OBJECT_BUCKET, key)
    if info is None:
        raise InputError(f'No data was uploaded for object "{found.name}"')
    problem = None
    if found.content_length is not None and info.size != found.content_length:
        problem = f"{info.size} bytes were uploaded but {found.content_length} were declared"
    for algorithm, value in hashes.items():
        if algorithm in info.hashes and info.hashes[algorithm] != value:
            problem = f"the uploaded data's {algorithm} hash is {info.hashes[algorithm]}, not {value}"
    if problem:
        await blobs.delete(OBJECT_BUCKET, [key])
        raise InputError(f'Object "{found.name}" cannot be finished: {problem}; upload it again')


async def start_download(ctx: Context):
    name, accepted = ctx.params["name"], ctx.body["acceptDownloadMethods"]
    found = await _finished(ctx, name)
    now = ctx.services.clock()
    if accepted.get("getUrl"):
        url = _blobs(ctx).download_url(OBJECT_BUCKET, object_key(name), now + 2 * GET_URL_MS)
        return {"method": "getUrl", "url": url, "expires": format_ms(now + GET_URL_MS), "hashes": dict(found.hashes)}
    if accepted.get("simple"):
        return {"method": "simple", "url": object_download_url(_blobs(ctx), name, now)}
    raise ApiError("NoMatchingMethod", 406, "Object supports methods simple, getUrl")


async def metadata(ctx: Context):
    return (await _finished(ctx, ctx.params["name"])).metadata()


async def download(ctx: Context):
    name = ctx.params["name"]
    await _finished(ctx, name)
    url = object_download_url(_blobs(ctx), name, ctx.services.clock())
    return web.Response(status=303, text=f"See Other. Redirecting to {url}", headers={"Location": url})


async def _finished(ctx: Context, name: str) -> Object:
    found = await ctx.run(ctx.services.journal.object_for_download, name)
    if found is None:
        raise _not_found(name)
    return found
