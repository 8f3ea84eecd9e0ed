"""scheduler, expiry part: apply the retention rule (shared/store/retention.py)."""

import asyncio
import logging

from taskjournal.shared.domain.time import now_ms
from taskjournal.shared.logs import fields
from taskjournal.shared.store.retention import drop_expired

log = logging.getLogger("taskjournal.scheduler")
INTERVAL_S = 60.0


async def run(journal, executor, interval: float = INTERVAL_S) -> None:
    loop = asyncio.get_running_loop()
    while True:
        try:
            tasks, groups = await loop.run_in_executor(executor, drop_expired, journal, now_ms())
            if tasks or groups:
                log.info("expired", extra=fields(tasks=tasks, taskGroups=groups))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("expiry failed; retrying")
        await asyncio.sleep(interval)
