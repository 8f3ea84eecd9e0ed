"""The artifact-service's expiry: objects past their `expires` and uploads
left unfinished for a day leave the log, the read model and the back end."""

import asyncio
import logging

from taskjournal.shared.domain.time import now_ms
from taskjournal.shared.logs import fields
from taskjournal.shared.storage import OBJECT_BUCKET, BlobStore, object_key
from taskjournal.shared.store.retention import drop_expired_objects

log = logging.getLogger("taskjournal.artifact-service")
INTERVAL_S = 60.0


async def expire_once(journal, executor, blobs: BlobStore) -> int:
    """One round; how many objects went."""
    loop = asyncio.get_running_loop()
    total = 0
    while True:
        names = await loop.run_in_executor(executor, drop_expired_objects, journal, now_ms())
        if not names:
            return total
        await blobs.delete(OBJECT_BUCKET, [object_key(name) for name in names])
        total += len(names)


async def run(journal, executor, blobs: BlobStore, interval: float = INTERVAL_S) -> None:
    while True:
        try:
            gone = await expire_once(journal, executor, blobs)
            if gone:
                log.info("objects expired", extra=fields(objects=gone))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("object expiry failed; retrying")
        await asyncio.sleep(interval)
