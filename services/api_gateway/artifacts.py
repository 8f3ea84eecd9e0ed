"""The Queue API's ten artifact endpoints (behaviour spec §8). Artifacts are
recorded by the Journal (Artifact aggregates) and read from the tj_artifacts
read model; bytes never pass through here: s3 artifacts get signed URLs of the
BlobStore, object artifacts go through the object service."""

import base64
from typing import Any

import orjson

from taskjournal.shared.auth.credentials import create_temporary_credentials
from taskjournal.shared.domain.artifact import name_problem, object_name
from taskjournal.shared.domain.errors import InputError, ResourceExpired, ResourceNotFound
from taskjournal.shared.domain.time import format_ms, parse_ms
from taskjournal.shared import storage
from taskjournal.shared.storage import BlobStore

from . import paging
from .context import Context
from .responses import Reply

PUT_URL_MS = 45 * 60 * 1000  # an s3 putUrl is announced valid this long (and signed 10 s longer)
PUT_URL_SLACK_MS = 10 * 1000
GET_URL_MS = 30 * 60 * 1000  # signed download URLs of s3 and object artifacts
UPLOAD_CREDENTIALS_MS = 24 * 3600 * 1000
DOWNLOAD_CREDENTIALS_MS = 3600 * 1000
STORAGE_TYPE_HEADER = "x-taskcluster-artifact-storage-type"


# ---------------------------------------------------------------- create and finish
async def create_artifact(ctx: Context):
    services, body = ctx.services, ctx.body
    task_id, run_id, name = ctx.params["taskId"], int(ctx.params["runId"]), ctx.params["name"]
    problem = name_problem(name)
    if problem:
        raise InputError(problem)
    _refuse_unsupported(services, body["storageType"])
    now = services.clock()
    reserve = _upload_reservation(services, run_id, name, parse_ms(body["expires"]), now)
    artifact = await ctx.run(services.journal.create_artifact, task_id, run_id, name, body, now, reserve)
    if artifact.storage_type == "s3":
        upload = _blobs(services).upload_url(artifact.details["bucket"], artifact.details["prefix"],
                                           artifact.content_type, now + PUT_URL_MS + PUT_URL_SLACK_MS)
        return {"storageType": "s3", "contentType": artifact.content_type, "expires": format_ms(now + PUT_URL_MS),
                "putUrl": upload.url}
    if artifact.storage_type == "object":
        return _object_upload_reply(services, artifact, now)
    return {"storageType": artifact.storage_type}


def _refuse_unsupported(services, storage_type: str) -> None:
    """A gateway built without a blob store (an in-process test's) refuses s3
    artifacts before anything is recorded."""
    if storage_type == "s3":
        _blobs(services)


def _blobs(services) -> BlobStore:
    if services.blobs is None:
        raise InputError("This deployment has no artifact store for storageType s3")
    return services.blobs


def _upload_reservation(services, run_id: int, name: str, expires: int, now: int):
    """What createArtifact does for an object artifact before recording it:
    lock the object name in the object service, with no upload method."""
    def reserve(task, upload_id: str) -> None:
        services.journal.create_upload(object_name(task.task_id, run_id, name), task.definition["projectId"],
                                       upload_id, expires, {}, now)
    return reserve


def _object_upload_reply(services, artifact, now: int) -> dict:
    project_id = artifact.task_status["projectId"]
    name = object_name(artifact.task_id, artifact.run_id, artifact.name)
    client_id = f"artifact-upload/{artifact.task_id}/{artifact.run_id}/on/{artifact.worker_group}/{artifact.worker_id}"
    credentials = _temporary(services, client_id, [f"object:upload:{project_id}:{name}"],
                             now, min(artifact.expires, now + UPLOAD_CREDENTIALS_MS))
    return {"storageType": "object", "name": name, "projectId": project_id,
            "uploadId": artifact.details["uploadId"], "expires": format_ms(artifact.expires),
            "credentials": credentials}


async def finish_artifact(ctx: Context):
    journal: Any = ctx.services.journal  # object_for_download: the object service's query (objects branch)
    task_id, run_id, name = ctx.params["taskId"], int(ctx.params["runId"]), ctx.params["name"]

    def object_finished() -> bool:  # asked on the store thread, only for an unfinished object artifact
        return journal.object_for_download(object_name(task_id, run_id, name)) is not None

    await ctx.run(journal.finish_artifact, task_id, run_id, name, ctx.body["uploadId"], object_finished)
    return Reply(None, 204)


# ---------------------------------------------------------------- downloads
async def get_artifact(ctx: Context):
    task_id, run_id = ctx.params["taskId"], int(ctx.params["runId"])
    return await _download(ctx, task_id, run_id, await _follow_links(ctx, task_id, run_id))


async def get_latest_artifact(ctx: Context):
    ctx.authorize(names=[ctx.params["name"]])  # 403 before any 404
    task_id = ctx.params["taskId"]
    run_id, row = await _latest(ctx, task_id)
    return await _download(ctx, task_id, run_id, await _follow_links(ctx, task_id, run_id, row, authorized=True))


async def artifact(ctx: Context):
    task_id, run_id = ctx.params["taskId"], int(ctx.params["runId"])
    return _content(ctx, task_id, run_id, await _follow_links(ctx, task_id, run_id))


async def latest_artifact(ctx: Context):
    task_id = ctx.params["taskId"]
    run_id, row = await _latest(ctx, task_id)  # 404 before the scope check (upstream's order)
    return _content(ctx, task_id, run_id, await _follow_links(ctx, task_id, run_id, row))


async def _follow_links(ctx: Context, task_id: str, run_id: int, *first: dict | None,
                        authorized: bool = False) -> dict:
    """The artifact a name leads to through links (§8.5): every name on the
    way must be readable; cycles are refused; the result is never a link.
    `first`: the named artifact's row (or None), when the caller already read it;
    `authorized`: the caller already checked the named artifact's scope."""
    names = [ctx.params["name"]]
    known = list(first)
    while True:
        if not (authorized and len(names) == 1):
            ctx.authorize(names=names)
        if known:
            row = known.pop()
        else:
            row = await ctx.run(ctx.services.journal.views.artifact_row, task_id, run_id, names[-1])
        if row is None or not row["present"]:
            raise ResourceNotFound("Artifact not found")
        if row["expires"] < ctx.services.clock():
            raise ResourceExpired("Artifact expired")  # upstream v76.0.0: expired but not yet deleted
        row["details"] = orjson.loads(row["details"])
        if row["storage_type"] != "link":
            return row
        target = row["details"]["artifact"]
        if target in names:
            raise InputError("Artifact leads to a link cycle")
        names.append(target)


async def _download(ctx: Context, task_id: str, run_id: int, row: dict) -> Reply:
    """getArtifact's answer: 303 to the bytes, or 424 for an error artifact."""
    kind, details = row["storage_type"], row["details"]
    headers = {STORAGE_TYPE_HEADER: kind}
    if kind == "error":
        return Reply({"reason": details["reason"], "message": details["message"]}, 424, headers)
    if kind == "object" and not _object_downloadable(row, ctx.services.clock()):
        raise ResourceNotFound("Object does not exist.")  # what the object service's startDownload 404 becomes
    url = _url(ctx.services, task_id, run_id, row)
    return Reply({"storageType": kind, "url": url}, 303, {**headers, "Location": url})


def _object_downloadable(row: dict, now: int) -> bool:
    """The object service would offer the object: finished, not expired
    (an object it purged, or one expired first, is gone)."""
    return row["object_finished"] is not None and row["object_expires"] > now


def _content(ctx: Context, task_id: str, run_id: int, row: dict) -> dict:
    """artifact / latestArtifact: how to get the bytes, always 200 (§8.7)."""
    kind, details, services = row["storage_type"], row["details"], ctx.services
    if kind == "error":
        return {"storageType": "error", "reason": details["reason"], "message": details["message"]}
    if kind == "object":
        name, now = object_name(task_id, run_id, row["name"]), services.clock()
        credentials = _temporary(services, f"artifact-download/{task_id}/{run_id}/{row['name']}",
                                 [f"object:download:{name}"], now, now + DOWNLOAD_CREDENTIALS_MS)
        return {"storageType": "object", "name": name, "credentials": credentials}
    return {"storageType": kind, "url": _url(services, task_id, run_id, row)}


def _url(services, task_id: str, run_id: int, row: dict) -> str:
    kind, details = row["storage_type"], row["details"]
    if kind == "reference":
        return details["url"]
    expires = services.clock() + GET_URL_MS
    if kind == "s3":
        return _blobs(services).download_url(details["bucket"], details["prefix"], expires)
    name = object_name(task_id, run_id, row["name"])
    return storage.object_download_url(_blobs(services), name, services.clock())  # straight to the bytes, as upstream


def _temporary(services, client_id: str, scopes: list[str], start: int, expiry: int) -> dict:
    issuer = services.issuer
    return create_temporary_credentials(issuer.client_id, issuer.access_token, start, expiry, scopes, name=client_id)


# ---------------------------------------------------------------- metadata and listings
async def artifact_info(ctx: Context):
    return await _info(ctx, ctx.params["taskId"], int(ctx.params["runId"]))


async def latest_artifact_info(ctx: Context):
    _, row = await _latest(ctx, ctx.params["taskId"])
    return _info_of(row)


async def _info(ctx: Context, task_id: str, run_id: int) -> dict:
    """The artifact's own metadata; links are not followed (§8.8)."""
    return _info_of(await ctx.run(ctx.services.journal.views.artifact_row, task_id, run_id, ctx.params["name"]))


def _info_of(row: dict | None) -> dict:
    if row is None or not row["present"]:
        raise ResourceNotFound("Artifact not found")
    return _listed(row)


async def list_artifacts(ctx: Context):
    task_id, run_id = ctx.params["taskId"], int(ctx.params["runId"])
    runs = await _runs(ctx, task_id)
    if run_id >= runs:
        raise ResourceNotFound(f"Task with taskId: `{task_id}` has no run with runId: {run_id}")
    return await _page(ctx, task_id, run_id)


async def list_latest_artifacts(ctx: Context):
    task_id = ctx.params["taskId"]
    return await _page(ctx, task_id, await _latest_run(ctx, task_id))


async def _page(ctx: Context, task_id: str, run_id: int) -> dict:
    """Every artifact of the run (present or not) by name, keyset-paged:
    the token is upstream's, base64 of [taskId, runId, name] of the last row."""
    limit = paging.page_size(ctx.query)
    after = _token_name(ctx.query.get("continuationToken"), task_id, run_id)
    rows = await ctx.run(ctx.services.journal.views.artifacts_page, task_id, run_id, after, limit + 1)
    body: dict[str, object] = {"artifacts": [_listed(row) for row in rows[:limit]]}
    if limit > 0 and len(rows) > limit:
        last = rows[limit - 1]["name"]
        body["continuationToken"] = base64.b64encode(orjson.dumps([task_id, run_id, last])).decode()
    return body


def _token_name(token: str | None, task_id: str, run_id: int) -> str:
    """The name a token continues after; an undecodable token (or one of
    another run) starts from the beginning, as upstream."""
    try:
        t, r, name = orjson.loads(base64.b64decode(token or "", validate=True))
        if t == task_id and r == run_id and isinstance(name, str):
            return name
    except Exception:
        pass
    return ""


def _listed(row: dict) -> dict:
    return {"storageType": row["storage_type"], "name": row["name"], "expires": format_ms(row["expires"]),
            "contentType": row["content_type"]}


async def _runs(ctx: Context, task_id: str) -> int:
    status = await ctx.run(ctx.services.journal.views.task_status, task_id)
    if status is None:
        raise ResourceNotFound("Task not found")
    runs = len(orjson.loads(status)["runs"])
    if runs == 0:
        raise ResourceNotFound("Task doesn't have any runs")
    return runs


async def _latest_run(ctx: Context, task_id: str) -> int:
    return await _runs(ctx, task_id) - 1


async def _latest(ctx: Context, task_id: str) -> tuple[int, dict | None]:
    """The task's last run and its artifact named in the URL, in one query
    (the 404s of a missing task or one without runs first)."""
    run_id, row = await ctx.run(ctx.services.journal.views.latest_artifact, task_id, ctx.params["name"])
    if run_id is None:
        raise ResourceNotFound("Task not found")
    if run_id < 0:
        raise ResourceNotFound("Task doesn't have any runs")
    return run_id, row
