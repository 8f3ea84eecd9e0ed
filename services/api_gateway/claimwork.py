"""claimWork's long poll: claim at once if work is pending, else sleep until
the store reports new pending work for the queue (or the wait ends).

Wake-ups come from this process's own commits and from other processes'
commits, heard through the store (see PendingListener)."""

import asyncio
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Executor

from taskjournal.shared.actor import in_context
from taskjournal.shared.domain.task import Task
from taskjournal.shared.domain.time import now_ms
from taskjournal.shared.journal import Journal
from taskjournal.shared.store import PENDING_CHANNEL, Store

log = logging.getLogger("taskjournal.claimwork")
SAFETY_POLL_S = 5.0  # a missed wake-up costs at most this long


class PendingSignal:
    """One asyncio.Event per task queue, replaced each time it fires."""

    def __init__(self):
        self.events: dict[str, asyncio.Event] = {}

    def watch(self, task_queue_id: str) -> asyncio.Event:
        return self.events.setdefault(task_queue_id, asyncio.Event())

    def notify(self, task_queue_ids: Iterable[str]) -> None:
        for queue in task_queue_ids:
            event = self.events.pop(queue, None)
            if event is not None:
                event.set()

    def notify_all(self) -> None:
        """Wake every waiter (the process drains: each long poll answers now)."""
        self.notify(list(self.events))


class Claimer:
    def __init__(self, journal: Journal, executor: Executor, signal: PendingSignal, wait_s: float,
                 claim_timeout_ms: int, clock: Callable[[], int] = now_ms, draining: asyncio.Event | None = None):
        self.journal, self.executor, self.signal = journal, executor, signal
        self.wait_s, self.claim_timeout_ms, self.clock = wait_s, claim_timeout_ms, clock
        # set when the process drains: no more waiting (the drain wakes waiters with signal.notify_all)
        self.draining = draining or asyncio.Event()

    async def claim(self, task_queue_id: str, worker_group: str, worker_id: str, count: int,
                    deliverable: Callable[[Task], bool] = lambda task: True,
                    barred: Callable[[int], bool] = lambda now: False) -> list[Task]:
        """`barred(now)`: the worker may not take work now (quarantined): it
        gets none, after the usual wait, as upstream answers."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.wait_s
        while True:
            woken = self.signal.watch(task_queue_id)  # before looking, so no wake-up is missed
            now = self.clock()
            if barred(now):
                try:
                    await asyncio.wait_for(self.draining.wait(), max(0.0, give_up - loop.time()))
                except asyncio.TimeoutError:
                    pass
                return []
            claimed = await loop.run_in_executor(self.executor, in_context(
                self.journal.claim_work, task_queue_id, worker_group, worker_id,
                count, now, now + self.claim_timeout_ms, deliverable))
            remaining = give_up - loop.time()
            if claimed or remaining <= 0 or self.draining.is_set():
                return claimed
            try:
                await asyncio.wait_for(woken.wait(), min(remaining, SAFETY_POLL_S))
            except asyncio.TimeoutError:
                pass


class PendingListener:
    """Hears other processes' pending work through the store."""

    def __init__(self, store: Store, signal: PendingSignal):
        self.store, self.signal = store, signal

    async def run(self) -> None:
        while True:
            try:
                async with self.store.listen(PENDING_CHANNEL) as notes:
                    async for queue in notes:
                        self.signal.notify([queue])
            except asyncio.CancelledError:
                raise
            except Exception as err:  # reconnect: the safety poll covers the gap
                log.warning("pending listener lost its connection: %s", err)
                await asyncio.sleep(1)
