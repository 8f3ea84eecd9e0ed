"""The backlog gauges an autoscaler reads: expired claims not yet resolved
(PostgreSQL and SQLite) and events waiting in the dependency-resolver's
queue (RabbitMQ)."""

import asyncio
import uuid

import aio_pika
import pytest

from taskjournal.services.claim_resolver.resolver import CLAIMS_BACKLOG, measure_backlog
from taskjournal.services.dependency_resolver import backlog
from taskjournal.shared.domain.time import now_ms
from taskjournal.shared.metrics import REGISTRY
from tests.support.journal import create_task


def gauge(name: str) -> float | None:
    return REGISTRY.counters.get((name, ()))


def test_expired_claims_backlog_counts_expired_unresolved_claims(journal):
    now = now_ms()
    queue = f"backlog/{uuid.uuid4().hex[:8]}"
    for _ in range(3):
        create_task(journal, queue, now, retries=0)
    claims = journal.claim_work(queue, "g", "w", 3, now, now + 1_000)
    before = journal.views.expired_claims_backlog(now + 1_000)
    measure_backlog(journal)(now + 1_000)
    assert gauge(CLAIMS_BACKLOG) == before >= 3
    journal.expire_claim(claims[0].task_id, 0, now + 1_000, now + 1_000)
    assert journal.views.expired_claims_backlog(now + 1_000) == before - 1
    assert journal.views.expired_claims_backlog(now + 999) == before - 3  # not expired yet


@pytest.mark.rabbitmq
async def test_dependency_events_backlog_is_the_queue_depth(amqp_url):
    name = f"taskjournal.test-{uuid.uuid4().hex[:8]}.dependency-resolver"
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
        try:
            for i in range(3):
                await channel.default_exchange.publish(aio_pika.Message(b"{}"), routing_key=name)
            watcher = asyncio.ensure_future(backlog.watch(amqp_url, name, 0.05))
            try:
                for _ in range(100):
                    if gauge(backlog.EVENTS_BACKLOG) == 3:
                        break
                    await asyncio.sleep(0.05)
            finally:
                watcher.cancel()
            assert gauge(backlog.EVENTS_BACKLOG) == 3
        finally:
            await queue.delete(if_unused=False, if_empty=False)


@pytest.mark.rabbitmq
async def test_dependency_consumers_hold_only_their_prefetch_so_replicas_share_the_queue(amqp_url):
    """Two replicas' consumers with two events in flight each: both handle
    events, neither holds more than two at once, and the rest wait in the
    queue where the backlog gauge sees them."""
    from taskjournal.services.bootstrap import dependency_consumer
    from taskjournal.shared.bus.queues import ServiceQueue

    name = f"taskjournal.test-{uuid.uuid4().hex[:8]}.dependency-resolver"
    queue = ServiceQueue(name, (f"test.{name}",))
    handled: dict[int, int] = {0: 0, 1: 0}
    in_flight = {0: 0, 1: 0}
    most = {0: 0, 1: 0}

    def handler(replica: int):
        async def handle(event: dict) -> None:
            in_flight[replica] += 1
            most[replica] = max(most[replica], in_flight[replica])
            await asyncio.sleep(0.05)
            in_flight[replica] -= 1
            handled[replica] += 1
        return handle

    brokers = [dependency_consumer(amqp_url, queue, handler(i), 2) for i in range(2)]
    await brokers[0].start()  # the first replica is up before any event, the second joins late
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        try:
            for _ in range(40):
                await channel.default_exchange.publish(aio_pika.Message(b"{}"), routing_key=name)
            depth = (await channel.declare_queue(name, passive=True)).declaration_result.message_count
            await brokers[1].start()
            for _ in range(200):
                if sum(handled.values()) == 40:
                    break
                await asyncio.sleep(0.05)
            assert sum(handled.values()) == 40
            assert depth >= 30  # not all delivered to the first replica
            assert handled[1] >= 5 and most == {0: 2, 1: 2}
        finally:
            for broker in brokers:
                await broker.stop()
            await channel.queue_delete(name)
