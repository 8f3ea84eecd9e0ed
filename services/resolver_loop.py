"""The loop every background resolver shares: find due work in a read model,
act on each item through the Journal, sleep at most `interval` seconds.

Replicas may run the same loop: the aggregates' optimistic concurrency lets
exactly one of them change a given task; the others see nothing left to do."""

import asyncio
import logging

from shared.domain.time import now_ms
from shared.logs import fields

log = logging.getLogger("taskjournal.resolver")


async def resolve_forever(name: str, find_due, act, executor, interval: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        try:
            now = now_ms()
            items = await loop.run_in_executor(executor, find_due, now)
            for item in items:
                if await loop.run_in_executor(executor, act, item, now):
                    log.info("%s resolved an item", name, extra=fields(resolver=name, item=str(item)))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; retrying", name)
        await asyncio.sleep(interval)
