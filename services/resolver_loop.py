"""The loop every background resolver shares: find due work in a read model,
act on each item through the Journal, sleep at most `interval` seconds.

Replicas may run the same loop: the aggregates' optimistic concurrency lets
exactly one of them change a given task; the others see nothing left to do."""

import asyncio
import logging

from taskjournal.shared.domain.time import now_ms
from taskjournal.shared.logs import fields

log = logging.getLogger("taskjournal.resolver")
DUE_BATCH = 100  # items a scan returns at most (see ReadModel.expired_claims / past_deadline)


async def resolve_forever(name: str, find_due, act, executor, interval: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        found = acted = 0
        try:
            items = await loop.run_in_executor(executor, find_due, now_ms())
            found = len(items)
            for item in items:
                # the time of acting, not of the scan, is when the item is resolved
                if await loop.run_in_executor(executor, act, item, now_ms()):
                    acted += 1
                    log.info("%s resolved an item", name, extra=fields(resolver=name, item=str(item)))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; retrying", name)
        if found < DUE_BATCH or not acted:  # a full, fruitful batch means more may be due: look again at once
            await asyncio.sleep(interval)
