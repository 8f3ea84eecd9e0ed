"""The loop every background resolver shares: lease a batch of due work from a
read model, act on each item through the Journal, sleep at most `interval`
seconds when nothing (more) is due.

Replicas divide the work (ADR 0017): a lease hands each replica a batch no
other replica holds, so N replicas work through a backlog about N times as
fast as one. The aggregates' optimistic concurrency still decides each
change: a lease that ran out (a slow or dead replica) can at worst make two
replicas try the same item, and then one of them finds nothing to do.

The items of a batch are acted on concurrently (on the executor's threads),
so their saves share transactions (group commit, ADR 0008): the event
store appends one transaction at a time, database-wide, and a commit that
carries many changes is what lets replicas add throughput."""

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from taskjournal.shared.domain.time import now_ms
from taskjournal.shared.logs import fields
from taskjournal.shared.metrics import REGISTRY

log = logging.getLogger("taskjournal.resolver")
LEASED_BATCH = 25  # items a replica leases at once: small, so replicas share a backlog evenly
RESOLVED = "taskjournal_resolved_items_total"
REGISTRY.describe(RESOLVED, "counter", "items a background resolver of this process resolved, by resolver")


async def resolve_forever(name: str, lease_due: Callable[[int, int], list], act: Callable[[Any, int], bool],
                          executor, interval: float, batch: int = LEASED_BATCH,
                          after_pass: Callable[[int], None] | None = None) -> None:
    """`lease_due(now, limit)` leases up to `limit` due items; `act(item, now)`
    is True when it changed something; `after_pass(now)` (blocking, e.g. a
    backlog gauge) runs after each pass."""
    loop = asyncio.get_running_loop()
    while True:
        found = acted = 0
        try:
            items = await loop.run_in_executor(executor, lease_due, now_ms(), batch)
            found = len(items)
            acted = sum(await asyncio.gather(*(_act_on(name, act, item, executor) for item in items)))
            if after_pass is not None:
                await loop.run_in_executor(executor, after_pass, now_ms())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; retrying", name)
        if found < batch or not acted:  # a full, fruitful batch means more may be due: look again at once
            await asyncio.sleep(interval)


async def _act_on(name: str, act: Callable[[Any, int], bool], item: Any, executor) -> bool:
    """Act on one item (the time of acting, not of the lease, is when it is
    resolved); a failure is logged and leaves the item to a later lease."""
    try:
        changed = await asyncio.get_running_loop().run_in_executor(executor, lambda: act(item, now_ms()))
    except Exception:
        log.exception("%s failed on an item; it is tried again later", name, extra=fields(item=str(item)))
        return False
    if changed:
        REGISTRY.inc(RESOLVED, resolver=name)
        log.info("%s resolved an item", name, extra=fields(resolver=name, item=str(item)))
    return bool(changed)
