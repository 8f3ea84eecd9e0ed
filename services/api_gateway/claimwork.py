"""claimWork's long poll: claim at once if work is pending, else sleep until
the store reports new pending work for the queue (or the wait ends).

Wake-ups come from this process's own commits and from other processes'
commits, heard through the store (see PendingListener).

Thousands of polls may sleep at once (ADR 0021), so the database sees work
per task queue, not per poll:
- a wake-up for a queue wakes ONE of its sleepers (the longest asleep); other
  queues' sleepers never stir. A sleeper whose lease took as many tasks as it
  asked for wakes the next one (there may be more) at once, while it loads and
  claims them, so a burst drains as a chain of overlapping looks;
- polls arriving while another poll looks, or after a look found the queue
  empty, go to sleep without a query (until the next wake-up for the queue,
  or SAFETY_POLL_S after that look);
- the safety re-check (for work that appears without a wake-up: an expired
  lease, a listener reconnecting) is one look per queue per SAFETY_POLL_S,
  made by one sleeper for all of them;
- a poll whose wait ends without a wake-up returns nothing without a query."""

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Executor

from taskjournal.shared.actor import in_context
from taskjournal.shared.domain.task import Task
from taskjournal.shared.domain.time import now_ms
from taskjournal.shared.journal import Journal
from taskjournal.shared.metrics import REGISTRY
from taskjournal.shared.store import PENDING_CHANNEL, Store

log = logging.getLogger("taskjournal.claimwork")
SAFETY_POLL_S = 5.0  # a missed wake-up costs at most this long (one look per queue, not per poll)
LOOKS = "taskjournal_claimwork_looks_total"
REGISTRY.describe(LOOKS, "counter", "claimWork's claim queries (looks for pending work) in the database", labels=())


class QueueWaiters:
    """The long polls of one task queue in this process, and what is known of
    its pending work."""

    def __init__(self) -> None:
        self.sleepers: dict[asyncio.Future[None], None] = {}  # in order of falling asleep
        self.polls = 0  # claim() calls on the queue now, asleep or not
        self.looking = 0  # looks in flight
        self.generation = 0  # wake-ups heard so far
        self.empty_generation = -1  # the generation a look found the queue empty in
        self.empty_at = 0.0  # loop time that look started
        self.looked_at = 0.0  # loop time the last look started
        self.recheck: asyncio.TimerHandle | None = None

    def needs_look(self, at: float, safety_s: float) -> bool:
        """False while another poll looks for the queue (it passes on what it
        leaves), or when no wake-up came since a recent look found nothing."""
        known_empty = self.empty_generation == self.generation and at - self.empty_at < safety_s
        return not (self.looking or known_empty)

    def wake_one(self) -> bool:
        while self.sleepers:
            sleeper = next(iter(self.sleepers))
            del self.sleepers[sleeper]
            if not sleeper.done():
                sleeper.set_result(None)
                return True
        return False


class PendingSignal:
    """The waiting polls per task queue; `notify` wakes one poll of each queue named."""

    def __init__(self) -> None:
        self.queues: dict[str, QueueWaiters] = {}

    def enter(self, task_queue_id: str) -> QueueWaiters:
        waiters = self.queues.setdefault(task_queue_id, QueueWaiters())
        waiters.polls += 1
        return waiters

    def leave(self, task_queue_id: str, waiters: QueueWaiters) -> None:
        waiters.polls -= 1
        if waiters.polls == 0:  # nobody left to wake: forget the queue
            if waiters.recheck is not None:
                waiters.recheck.cancel()
            self.queues.pop(task_queue_id, None)

    def notify(self, task_queue_ids: Iterable[str]) -> None:
        for queue in task_queue_ids:
            waiters = self.queues.get(queue)
            if waiters is not None:
                waiters.generation += 1  # also tells a look in flight to look again
                waiters.wake_one()

    def notify_all(self) -> None:
        """Every queue may have gained work unheard (the listener reconnected)."""
        self.notify(list(self.queues))

    def wake_all(self) -> None:
        """Wake every sleeping poll of every queue (the process drains: each long poll answers now)."""
        for waiters in self.queues.values():
            while waiters.wake_one():
                pass


class Claimer:
    def __init__(self, journal: Journal, executor: Executor, signal: PendingSignal, wait_s: float,
                 claim_timeout_ms: int, clock: Callable[[], int] = now_ms, safety_s: float = SAFETY_POLL_S,
                 draining: asyncio.Event | None = None):
        self.journal, self.executor, self.signal = journal, executor, signal
        self.wait_s, self.claim_timeout_ms, self.clock = wait_s, claim_timeout_ms, clock
        self.safety_s = safety_s
        self.looks: Counter[str] = Counter()  # claim queries per task queue (tests, bench)
        # set when the process drains: no more waiting (the drain wakes every sleeper with signal.wake_all)
        self.draining = draining or asyncio.Event()

    async def claim(self, task_queue_id: str, worker_group: str, worker_id: str, count: int,
                    deliverable: Callable[[Task], bool] = lambda task: True,
                    barred: Callable[[int], bool] = lambda now: False) -> list[Task]:
        """`barred(now)`: the worker may not take work now (quarantined): it
        gets none, after the usual wait, as upstream answers."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.wait_s
        waiters = self.signal.enter(task_queue_id)
        woken = False
        try:
            while True:
                now = self.clock()
                if barred(now):
                    if woken:  # the wake-up was meant for a poll that can take work
                        waiters.wake_one()
                    await self._wait_unless_draining(give_up - loop.time())
                    return []
                if woken or self.wait_s <= 0 or waiters.needs_look(loop.time(), self.safety_s):
                    claimed = await self._look(task_queue_id, waiters, worker_group, worker_id, count, now,
                                               deliverable)
                    if claimed is None:
                        continue  # the queue may hold work still: look again
                    if claimed:
                        return claimed
                remaining = give_up - loop.time()
                if remaining <= 0 or self.draining.is_set():
                    return []
                woken = await self._sleep(waiters, remaining)
                if not woken or self.draining.is_set():
                    return []  # no wake-up: no work, and no query to learn it; or the process drains
        finally:
            self.signal.leave(task_queue_id, waiters)

    async def _wait_unless_draining(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.draining.wait(), max(0.0, seconds))
        except asyncio.TimeoutError:
            pass

    async def _look(self, task_queue_id: str, waiters: QueueWaiters, worker_group: str, worker_id: str,
                    count: int, now: int, deliverable: Callable[[Task], bool]) -> list[Task] | None:
        """Claim what is pending; None when nothing was claimed but the
        queue may hold work still (the caller looks again)."""
        loop = asyncio.get_running_loop()
        generation, waiters.looked_at = waiters.generation, loop.time()
        self.looks[task_queue_id] += 1
        REGISTRY.inc(LOOKS)
        offered = 0
        passed_on = False  # a sleeper was woken when the lease came back full

        def counted(task: Task) -> bool:
            nonlocal offered
            offered += 1
            return deliverable(task)

        def pass_on() -> None:
            nonlocal passed_on
            passed_on = waiters.wake_one()

        def leased(n: int) -> None:  # on the executor's thread, before the tasks are loaded
            if n >= count:  # more may be pending: the next sleeper looks while this one claims
                loop.call_soon_threadsafe(pass_on)

        waiters.looking += 1
        try:
            claimed = await loop.run_in_executor(self.executor, in_context(
                self.journal.claim_work, task_queue_id, worker_group, worker_id,
                count, now, now + self.claim_timeout_ms, counted, leased))
        finally:
            waiters.looking -= 1
        announced = waiters.generation != generation
        if claimed:
            # more may be pending: the next sleeper looks, unless one was woken at the lease; polls
            # that arrived after that wake-up found this look in flight and went to sleep
            if (len(claimed) >= count or announced) and not passed_on:
                waiters.wake_one()
            return claimed
        if announced or offered:  # offered: runs were taken but resolved as undeliverable, more may wait
            return None
        waiters.empty_generation, waiters.empty_at = generation, waiters.looked_at
        return []

    async def _sleep(self, waiters: QueueWaiters, remaining: float) -> bool:
        """Sleep until woken (True) or `remaining` seconds pass (False)."""
        sleeper: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.sleepers[sleeper] = None
        self._plan_recheck(waiters)
        try:
            async with asyncio.timeout(remaining):
                await sleeper
            return True
        except TimeoutError:  # woken just as the time ran out: the wake-up still counts
            return sleeper.done() and not sleeper.cancelled()
        except asyncio.CancelledError:
            if sleeper.done() and not sleeper.cancelled():  # woken, then the client left: pass it on
                waiters.wake_one()
            raise
        finally:
            waiters.sleepers.pop(sleeper, None)

    def _plan_recheck(self, waiters: QueueWaiters) -> None:
        if waiters.recheck is None:
            loop = asyncio.get_running_loop()
            waiters.recheck = loop.call_later(self.safety_s, self._recheck, waiters)

    def _recheck(self, waiters: QueueWaiters) -> None:
        """The safety re-check: one sleeper looks for the whole queue when no
        look was made for SAFETY_POLL_S."""
        waiters.recheck = None
        if not waiters.sleepers:
            return
        loop = asyncio.get_running_loop()
        due = waiters.looked_at + self.safety_s - loop.time()
        if due <= 0:
            waiters.wake_one()
            due = self.safety_s
        waiters.recheck = loop.call_later(due, self._recheck, waiters)


class PendingListener:
    """Hears other processes' pending work through the store."""

    def __init__(self, store: Store, signal: PendingSignal):
        self.store, self.signal = store, signal

    async def run(self) -> None:
        while True:
            try:
                async with self.store.listen(PENDING_CHANNEL) as notes:
                    self.signal.notify_all()  # what was announced while not listening went unheard
                    async for queue in notes:
                        self.signal.notify([queue])
            except asyncio.CancelledError:
                raise
            except Exception as err:  # reconnect: the safety re-check covers the gap
                log.warning("pending listener lost its connection: %s", err)
                await asyncio.sleep(1)
