"""claimWork's long poll: claim at once if work is pending, else sleep until
the store reports new pending work for the queue (or the wait ends).

Wake-ups come from this process's own commits and, on PostgreSQL, from
NOTIFY sent by other processes' commits (see PendingListener)."""

import asyncio
import logging

import psycopg

from taskjournal.shared.store.recorders import PENDING_CHANNEL

log = logging.getLogger("taskjournal.claimwork")
SAFETY_POLL_S = 5.0  # a missed wake-up costs at most this long


class PendingSignal:
    """One asyncio.Event per task queue, replaced each time it fires."""

    def __init__(self):
        self.events: dict[str, asyncio.Event] = {}

    def watch(self, task_queue_id: str) -> asyncio.Event:
        return self.events.setdefault(task_queue_id, asyncio.Event())

    def notify(self, task_queue_ids) -> None:
        for queue in task_queue_ids:
            event = self.events.pop(queue, None)
            if event is not None:
                event.set()


class Claimer:
    def __init__(self, services, signal: PendingSignal):
        self.services, self.signal = services, signal

    async def claim(self, task_queue_id: str, worker_group: str, worker_id: str, count: int,
                    deliverable=lambda task: True) -> list:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.services.settings.claimwork_wait
        while True:
            woken = self.signal.watch(task_queue_id)  # before looking, so no wake-up is missed
            now = self.services.clock()
            claimed = await loop.run_in_executor(
                self.services.executor, self.services.journal.claim_work, task_queue_id, worker_group, worker_id,
                count, now, now + self.services.claim_timeout_ms, deliverable)
            remaining = give_up - loop.time()
            if claimed or remaining <= 0:
                return claimed
            try:
                await asyncio.wait_for(woken.wait(), min(remaining, SAFETY_POLL_S))
            except asyncio.TimeoutError:
                pass


class PendingListener:
    """LISTENs for other processes' pending work on PostgreSQL."""

    def __init__(self, database_url: str, signal: PendingSignal):
        self.database_url, self.signal = database_url, signal

    async def run(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.database_url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {PENDING_CHANNEL}")
                    async for note in conn.notifies():
                        self.signal.notify([note.payload])
            except asyncio.CancelledError:
                raise
            except Exception as err:  # reconnect: the safety poll covers the gap
                log.warning("pending listener lost its connection: %s", err)
                await asyncio.sleep(1)
