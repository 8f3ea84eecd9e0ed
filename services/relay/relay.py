"""The relay: follows the journal's notification log in order, publishes
the Pulse messages and internal events of each batch with confirms, then
records its position (ADR 0005). Publish-then-record makes delivery at
least once: a relay that dies between the two publishes the batch again."""

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from taskjournal.shared.bus import Publisher
from taskjournal.shared.logs import fields
from taskjournal.shared.messages import event_type, internal_event_for, messages_for, topic_matches
from taskjournal.shared.metrics import REGISTRY

log = logging.getLogger("taskjournal.relay")
# batches sent whose confirms are awaited while the next ones go out: a batch's messages no longer wait for
# the confirms of the one before (a quorum queue's confirm takes a few milliseconds under load)
IN_FLIGHT = 4


class Relay:
    """One relay per database. `after_publish(position)` is a test seam: it
    runs once a batch is confirmed and before its position is recorded."""

    def __init__(self, journal, publisher: Publisher, name: str = "default", batch_size: int = 500,
                 cache_size: int = 10_000, poll_interval: float = 1.0, standby_interval: float = 2.0,
                 executor=None, after_publish: Callable[[int], Awaitable[None]] | None = None,
                 internal_events: tuple[str, ...] = (), wake: asyncio.Event | None = None):
        self.journal = journal
        # topic patterns of the internal events services consume; each needs a queue bound for it,
        # or the publisher refuses the batch (an unroutable internal event is never acknowledged)
        self.internal_events = internal_events
        self.publisher = publisher
        self.name = name
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.poll_interval = poll_interval
        self.standby_interval = standby_interval
        self.executor = executor
        self.after_publish = after_publish
        self.position: int | None = None  # last recorded; None until `load_position`
        self._aggregates: OrderedDict = OrderedDict()  # LRU: aggregate id -> state after its last relayed event
        self._wake = wake or asyncio.Event()  # set when new events are committed (bootstrap.Wakeups)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._recording: asyncio.Future | None = None  # the position writes in flight, if any
        self._to_record: int | None = None  # a confirmed position waiting for the write in flight
        self._backoff = 0.0  # the wait before retrying after a failed batch
        self._reading = threading.Lock()

    # ------------------------------------------------------------ wake-ups
    def wake(self) -> None:
        """New events were committed: look now rather than at the next poll.
        Safe from any thread (the journal calls it after a save)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._wake.set)
            except RuntimeError:  # loop closed meanwhile
                pass

    # ------------------------------------------------------------ the loop
    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        await self._run_as_leader(stop)

    async def _relay(self, stop: asyncio.Event, lost: asyncio.Future | None) -> None:
        """Relay until stopped (or `lost`, the leadership, ends)."""
        log.info("relay active", extra=fields(relay=self.name))
        self.position = None  # another relay may have moved it while this one stood by
        try:
            await self._relay_batches(stop, lost)
        finally:  # a stop still writes the position of the batches confirmed (if it cannot: sent again)
            with contextlib.suppress(Exception):
                await self._recorded()

    async def _relay_batches(self, stop: asyncio.Event, lost: asyncio.Future | None) -> None:
        self._backoff = 0.0
        while not stop.is_set() and not (lost and lost.done()):
            try:
                await self._pipeline(stop, lost)
            except Exception as error:
                self._backoff = next_backoff(self._backoff)
                REGISTRY.inc("taskjournal_relay_errors_total")
                log.warning("relay batch failed; retrying", exc_info=error,
                            extra=fields(relay=self.name, position=self.position, retryIn=self._backoff))
                await _first(stop.wait(), timeout=self._backoff, also=lost)

    async def _pipeline(self, stop: asyncio.Event, lost: asyncio.Future | None) -> None:
        """Send batch after batch while the confirms of earlier ones are
        awaited (up to IN_FLIGHT waiting), and record the batches confirmed,
        in log order. Returns once stopped and what was sent is confirmed;
        raises when a batch fails: the batches sent after it are dropped and
        read again from the last confirmed position (at least once)."""
        if self.position is None:
            await self._blocking(self.load_position)
        sent: asyncio.Queue = asyncio.Queue(IN_FLIGHT)
        sender = asyncio.ensure_future(self._send_batches(sent, stop, lost))
        try:
            while True:
                if sent.empty():
                    if sender.done():
                        sender.result()  # raises if sending failed
                        return
                    getter = asyncio.ensure_future(sent.get())
                    await asyncio.wait([getter, sender], return_when=asyncio.FIRST_COMPLETED)
                    if not getter.done():
                        getter.cancel()
                        continue
                    batch = getter.result()
                else:
                    batch = sent.get_nowait()
                await self._confirm(*batch)
        finally:
            sender.cancel()
            unconfirmed = [sent.get_nowait()[-1] for _ in range(sent.qsize())]
            for confirmed in unconfirmed:
                confirmed.cancel()
            await asyncio.gather(sender, *unconfirmed, return_exceptions=True)

    async def _send_batches(self, sent: asyncio.Queue, stop: asyncio.Event, lost: asyncio.Future | None) -> None:
        position = self.position
        while not stop.is_set() and not (lost and lost.done()):
            self._wake.clear()  # before reading, so a wake during the batch is not lost
            batch = await self._blocking(self._read_batch, position)
            if batch is not None:
                last, count, messages, internal = batch
                started = time.perf_counter()
                confirmed = await self.publisher.send(messages, internal)
                try:
                    await sent.put((last, count, messages, started, confirmed))
                except BaseException:  # stopped while IN_FLIGHT batches wait: nobody will await this one
                    confirmed.cancel()
                    raise
                position = last
            if batch is None or batch[1] < self.batch_size:  # caught up: wait for news
                await _first(stop.wait(), self._wake.wait(), timeout=self.poll_interval, also=lost)

    async def step(self) -> int:
        """Relay one batch and wait for its confirms (its position is written in the background); the
        number of events relayed."""
        if self.position is None:
            await self._blocking(self.load_position)
        batch = await self._blocking(self._read_batch, self.position)
        if batch is None:
            return 0
        last, count, messages, internal = batch
        started = time.perf_counter()
        await self._confirm(last, count, messages, started, await self.publisher.send(messages, internal))
        return count

    async def _confirm(self, last: int, count: int, messages: list, started: float,
                       confirmed: asyncio.Future[None]) -> None:
        """Wait for a batch's confirms, then record its position."""
        await confirmed
        elapsed = time.perf_counter() - started
        if self._recording is not None and self._recording.done():
            await self._recorded()  # a failed write fails the batch after it (retried)
        if self.after_publish is not None:
            await self.after_publish(last)
        # a position is written only once its batch is confirmed, so a crash before the write publishes
        # that batch again (at least once); the write runs while the next batches are read and published
        self._record_soon(last)
        self.position = last
        self._backoff = 0.0
        REGISTRY.observe("taskjournal_relay_publish_seconds", elapsed)
        REGISTRY.inc("taskjournal_relay_events_total", count)
        for m in messages:
            REGISTRY.inc("taskjournal_relay_messages_total", exchange=m.exchange.rsplit("/", 1)[1])
        log.debug("relayed", extra=fields(relay=self.name, position=last, events=count, messages=len(messages),
                                          seconds=round(elapsed, 4)))

    def _record_soon(self, position: int) -> None:
        """Write `position` after the write in flight, if any. One write at a
        time, and only the newest position waiting: batches confirmed while a
        write runs share the next one (fewer writes than batches under load)."""
        self._to_record = position
        if self._recording is None or self._recording.done():
            self._recording = asyncio.ensure_future(self._record_newest())

    async def _record_newest(self) -> None:
        while self._to_record is not None:
            position, self._to_record = self._to_record, None
            try:
                await self._blocking(self._record, position)
            except Exception as error:  # the next confirmed batch fails on it, and is retried
                log.warning("relay position write failed", exc_info=error,
                            extra=fields(relay=self.name, position=position))
                raise

    async def _recorded(self) -> None:
        """Wait until the confirmed positions are written; raise if a write failed."""
        recording, self._recording = self._recording, None
        if recording is not None:
            await asyncio.shield(recording)

    # ------------------------------------------------------------ the log and the position (blocking)
    def load_position(self) -> int:
        self.position = self.journal.store.relay_position(self.name)
        return self.position

    def _record(self, position: int) -> None:
        self.journal.store.record_relay_position(self.name, position)

    def _read_batch(self, position: int):
        # one read at a time: a read abandoned by a failed pipeline may still run on its thread, and
        # reads share the aggregate cache
        with self._reading:
            return self._read_batch_after(position)

    def _read_batch_after(self, position: int):
        events = self.journal.events_after(position, self.batch_size)
        if not events:
            return None
        messages, internal = [], []
        for notification_id, event in events:
            after = self._state_after(event)
            messages += messages_for(event, after)
            if any(topic_matches(pattern, event_type(event)) for pattern in self.internal_events):
                internal.append(internal_event_for(event, after, notification_id))
        return events[-1][0], len(events), messages, internal

    def _state_after(self, event):
        key, version = event.originator_id, event.originator_version
        aggregate = self._aggregates.pop(key, None)
        if aggregate is None or aggregate.version != version - 1:  # not cached, or a retried batch
            aggregate = None if version == 1 else self.journal.repository.get(key, version=version - 1)
        aggregate = event.mutate(aggregate)
        self._aggregates[key] = aggregate
        if len(self._aggregates) > self.cache_size:
            self._aggregates.popitem(last=False)
        return aggregate

    async def _blocking(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    # ------------------------------------------------------------ one active relay per store
    async def _run_as_leader(self, stop: asyncio.Event) -> None:
        """Hold a session lock on the store's listening connection while
        relaying (closing the connection releases it); stand by otherwise.
        The same connection hears the event store's notifications."""
        store = self.journal.store
        while not stop.is_set():
            try:
                async with store.listen(store.events_channel) as conn:
                    if not await self._acquire_lock(conn, stop):
                        return  # stopped while standing by
                    listener = asyncio.ensure_future(self._listen(conn))
                    try:
                        await self._relay(stop, lost=listener)
                    finally:
                        listener.cancel()
                        await asyncio.gather(listener, return_exceptions=True)
                    failure = None if listener.cancelled() else listener.exception()
                    if failure is not None:
                        raise failure  # the connection, and so the lock, is gone
            except Exception as error:
                log.warning("relay lost its database connection; reconnecting", exc_info=error,
                            extra=fields(relay=self.name))
                await _first(stop.wait(), timeout=self.standby_interval)

    async def _acquire_lock(self, conn, stop: asyncio.Event) -> bool:
        key = advisory_key(self.name)
        announced = False
        while not stop.is_set():
            if await conn.try_lock(key):
                return True
            if not announced:
                log.info("relay standing by: another relay is active", extra=fields(relay=self.name))
                announced = True
            await _first(stop.wait(), timeout=self.standby_interval)
        return False

    async def _listen(self, conn) -> None:
        async for _ in conn:
            self._wake.set()


FIRST_BACKOFF, MAX_BACKOFF = 0.1, 1.0  # seconds


def next_backoff(previous: float) -> float:
    """The wait before retrying a failed batch: doubling from 0.1 s, capped at
    1 s, so publishing resumes within about a second of the broker (or the
    database) coming back; each retry costs one connection attempt at most."""
    return min(max(previous * 2, FIRST_BACKOFF), MAX_BACKOFF)


def advisory_key(name: str) -> int:
    """A stable signed 64-bit lock key per relay name."""
    return int.from_bytes(hashlib.sha256(f"taskjournal.relay:{name}".encode()).digest()[:8], "big", signed=True)


async def _first(*waits, timeout: float, also: asyncio.Future | None = None) -> None:
    """Wait until one of the coroutines (or `also`) finishes, or `timeout`."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks + ([also] if also else []), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
