"""scheduler, expiry part: apply the retention rule (shared/store/retention.py)."""

import asyncio
import logging
from collections import defaultdict

import orjson

from taskjournal.shared.domain.time import now_ms
from taskjournal.shared.logs import fields
from taskjournal.shared.store.retention import (
    drop_artifacts,
    drop_expired,
    drop_expired_worker_info,
    expired_artifacts,
)

log = logging.getLogger("taskjournal.scheduler")
INTERVAL_S = 60.0


async def run(journal, executor, interval: float = INTERVAL_S, blobs=None) -> None:
    """`blobs`: the BlobStore holding s3 artifacts' bytes (deleted with them)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            tasks, groups = await loop.run_in_executor(executor, drop_expired, journal, now_ms())
            if tasks or groups:
                log.info("expired", extra=fields(tasks=tasks, taskGroups=groups))
            artifacts = await expire_artifacts(journal, executor, blobs, now_ms())
            if artifacts:
                log.info("expired", extra=fields(artifacts=artifacts))
            queues, workers = await loop.run_in_executor(executor, drop_expired_worker_info, journal, now_ms())
            if queues or workers:
                log.info("expired", extra=fields(taskQueues=queues, workers=workers))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("expiry failed; retrying")
        await asyncio.sleep(interval)


async def expire_artifacts(journal, executor, blobs, now: int) -> int:
    """Delete expired artifacts: the stored bytes of s3 artifacts first
    (missing ones are no error), then events and rows. The bytes of object
    artifacts belong to the object, which expires on its own."""
    loop = asyncio.get_running_loop()
    rows = await loop.run_in_executor(executor, expired_artifacts, journal, now)
    if blobs is None:  # s3 artifacts wait for a blob store to delete their bytes from
        rows = [row for row in rows if row["storage_type"] != "s3"]
    by_bucket: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if row["storage_type"] == "s3":
            details = orjson.loads(row["details"])
            by_bucket[details["bucket"]].append(details["prefix"])
    for bucket, keys in by_bucket.items():
        await blobs.delete(bucket, keys)
    return await loop.run_in_executor(executor, drop_artifacts, journal, rows)
