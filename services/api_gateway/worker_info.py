"""claimWork's worker bookkeeping without a write or a query per call.

"Seen" updates (behaviour spec §10.1) are written at most once per key per
UPDATE_EVERY_MS in each process, as upstream throttles them (so
`lastDateActive` may lag by up to half an hour, as upstream's does).
Quarantine is checked against an in-memory copy of the quarantined workers,
refreshed from the read model every REFRESH_S, so a quarantine made through
another gateway process holds here within about a second."""

import asyncio
import logging
from collections.abc import Callable

from taskjournal.shared.domain.time import now_ms
from taskjournal.shared.domain.worker import QUEUE_SEEN_EXPIRY_MS, WORKER_SEEN_EXPIRY_MS

log = logging.getLogger("taskjournal.workers")
UPDATE_EVERY_MS = 30 * 60 * 1000  # upstream's WORKER_INFO_UPDATE_FREQUENCY
REFRESH_S = 1.0
MAX_REMEMBERED = 100_000  # seen keys kept in memory; forgetting one only costs a write

WorkerKey = tuple[str, str, str]  # (taskQueueId, workerGroup, workerId)


class WorkerInfo:
    def __init__(self, journal, clock: Callable[[], int] = now_ms):
        self.journal, self.clock = journal, clock
        self.written: dict[tuple, int] = {}  # key -> when this process last wrote it
        self.quarantined: dict[WorkerKey, int] = {}  # key -> quarantineUntil
        self.noted: dict[WorkerKey, tuple[int, int]] = {}  # key -> (when noted here, quarantineUntil)

    # ------------------------------------------------------------ "seen"
    def due(self, key: tuple, now: int) -> bool:
        """Whether `key` should be written now; if so, note it as written."""
        last = self.written.get(key)
        if last is not None and now - last < UPDATE_EVERY_MS:
            return False
        if len(self.written) >= MAX_REMEMBERED:
            self.written.clear()
        self.written[key] = now
        return True

    def forget(self, key: tuple) -> None:
        self.written.pop(key, None)

    def worker_seen(self, task_queue_id: str, worker_group: str, worker_id: str, now: int) -> None:
        """claimWork, reclaimTask: the worker, and its queue when that is due
        too (so the many workers of one queue do not all write its record)
        (blocking; run off the loop)."""
        key = ("worker", task_queue_id, worker_group, worker_id)
        if not self.due(key, now):
            return
        queue_key = ("queue-by-worker", task_queue_id)
        queue_due = self.due(queue_key, now)
        try:
            self.journal.record_seen(task_queue_id, now + WORKER_SEEN_EXPIRY_MS if queue_due else None, now,
                                     (worker_group, worker_id, now + WORKER_SEEN_EXPIRY_MS))
        except Exception:
            self.forget(key)  # try again on the next call
            if queue_due:
                self.forget(queue_key)
            raise

    def queue_seen(self, task_queue_id: str, now: int) -> None:
        """claimTask: the queue only, with upstream's 5-day expiry."""
        key = ("queue", task_queue_id)
        if not self.due(key, now):
            return
        try:
            self.journal.record_seen(task_queue_id, now + QUEUE_SEEN_EXPIRY_MS, now, None)
        except Exception:
            self.forget(key)
            raise

    def needs_write(self, task_queue_id: str, worker_group: str, worker_id: str, now: int) -> bool:
        last = self.written.get(("worker", task_queue_id, worker_group, worker_id))
        return last is None or now - last >= UPDATE_EVERY_MS

    # ------------------------------------------------------------ quarantine
    def is_quarantined(self, key: WorkerKey, now: int) -> bool:
        until = self.quarantined.get(key)
        return until is not None and until > now

    def note_quarantine(self, key: WorkerKey, until: int) -> None:
        """A quarantine changed through this process: holds here at once."""
        self.quarantined[key] = until
        self.noted[key] = (self.clock(), until)

    def refresh(self) -> None:
        started = self.clock()
        rows = self.journal.views.quarantined_workers(started)
        fresh = {(r["task_queue_id"], r["worker_group"], r["worker_id"]): r["quarantine_until"] for r in rows}
        # a change noted here while the query ran may be newer than what it read: keep it one more round
        for key, (at, until) in list(self.noted.items()):
            if at >= started - int(REFRESH_S * 1000):
                fresh[key] = until
            else:
                del self.noted[key]
        self.quarantined = {key: until for key, until in fresh.items() if until > started}

    async def keep_fresh(self, executor) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(executor, self.refresh)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # keep the last copy; the next round tries again
                log.warning("could not refresh the quarantined workers: %s", err)
            await asyncio.sleep(REFRESH_S)
