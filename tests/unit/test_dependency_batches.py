import asyncio

import pytest

from taskjournal.services.dependency_resolver.batches import Batcher


class Recorder:
    """A batch handler that holds each batch until released, and fails on "bad"."""

    def __init__(self):
        self.batches: list[list[str]] = []
        self.release = asyncio.Event()

    async def __call__(self, events):
        self.batches.append([e["id"] for e in events])
        await self.release.wait()
        if any(e["id"] == "bad" for e in events):
            raise ValueError("bad event")


async def arrive(batcher, ids):
    """One event after the other, each given time to reach a free drain."""
    calls = []
    for i in ids:
        calls.append(asyncio.ensure_future(batcher.handle({"id": i})))
        for _ in range(3):
            await asyncio.sleep(0)
    return calls


async def test_an_idle_batcher_handles_an_event_at_once():
    handler = Recorder()
    handler.release.set()
    await Batcher(handler, max_size=10, concurrency=1).handle({"id": "a"})
    assert handler.batches == [["a"]]


async def test_events_arriving_while_every_batch_is_busy_are_handled_together():
    handler = Recorder()
    batcher = Batcher(handler, max_size=2, concurrency=1)
    calls = await arrive(batcher, "abcd")
    handler.release.set()
    await asyncio.gather(*calls)
    assert handler.batches == [["a"], ["b", "c"], ["d"]]  # at most max_size at once


async def test_a_failing_event_fails_alone():
    handler = Recorder()
    batcher = Batcher(handler, max_size=10, concurrency=1)
    calls = await arrive(batcher, ("a", "b", "bad", "c"))
    handler.release.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["NoneType", "NoneType", "ValueError", "NoneType"]
    assert ["b", "bad", "c"] in handler.batches and ["bad"] in handler.batches  # the batch, then each alone


async def test_batches_run_side_by_side_up_to_the_concurrency():
    handler = Recorder()
    batcher = Batcher(handler, max_size=10, concurrency=2)
    calls = await arrive(batcher, "abc")
    assert handler.batches == [["a"], ["b"]]  # "c" waits for a free drain
    handler.release.set()
    await asyncio.gather(*calls)
    assert handler.batches[-1] == ["c"]


async def test_a_cancelled_drain_fails_the_events_in_hand():
    handler = Recorder()
    batcher = Batcher(handler, max_size=10, concurrency=1)
    call = asyncio.ensure_future(batcher.handle({"id": "a"}))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    for drain in list(batcher._drains):
        drain.cancel()
    with pytest.raises(RuntimeError, match="stopped"):
        await call
