"""Batching of the dependency-resolver's events: up to `concurrency` batches
are handled at once; while all of them are busy, the events that arrive
wait and are handled together next, in one query and one commit. A resolver
that keeps up handles each event at once, with no added wait (the same shape
as the store's group commit)."""

import asyncio
from collections.abc import Awaitable, Callable

Item = tuple[dict, asyncio.Future]


class Batcher:
    def __init__(self, handle_batch: Callable[[list[dict]], Awaitable[None]], max_size: int, concurrency: int):
        self.handle_batch = handle_batch
        self.max_size = max_size
        self.concurrency = concurrency
        self._waiting: list[Item] = []
        self._running = 0  # drains at work
        self._drains: set[asyncio.Future] = set()  # a reference to each, until it ends

    async def handle(self, event: dict) -> None:
        """Return once `event` is handled (with the others of its batch); raise
        if it failed, so that its delivery is not acknowledged."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((event, done))
        if self._running < self.concurrency:
            self._running += 1
            drain = asyncio.ensure_future(self._handle_waiting())
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        await done

    async def _handle_waiting(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:self.max_size], self._waiting[self.max_size:]
                try:
                    await self._handle(batch)
                finally:  # even if cancelled: no handler may wait forever
                    _finish(batch, RuntimeError("the dependency-resolver stopped before handling this event"))
        finally:  # no await since the last look: an event added now finds room for a new drain
            self._running -= 1

    async def _handle(self, batch: list[Item]) -> None:
        try:
            await self.handle_batch([event for event, _ in batch])
        except Exception as error:
            if len(batch) == 1:
                _finish(batch, error)
                return
            for item in batch:  # one bad event must not fail the others: each alone
                await self._handle([item])
            return
        _finish(batch, None)


def _finish(batch: list[Item], error: BaseException | None) -> None:
    for _, done in batch:
        if done.done():
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)
