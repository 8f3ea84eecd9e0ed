"""Draining (docs/adr/0020-metrics-and-drain.md): a dependency-resolver that
is stopped while it handles an internal event finishes it and acks it (the
event is neither lost nor handled twice), and its health names the broker."""

import asyncio
import threading
import time
import uuid

import aio_pika

from taskjournal.services import bootstrap
from taskjournal.services.dependency_resolver import resolver
from taskjournal.shared.bus.rabbit import RabbitPublisher
from taskjournal.shared.config import Settings
from taskjournal.shared.messages import InternalEvent
from tests.support.amqp import delete_service_queues
from tests.support.server import free_ports


async def until(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def waiting_messages(amqp_url: str, queue: str) -> int:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        declared = await (await connection.channel()).declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0


async def test_a_draining_dependency_resolver_finishes_and_acks_the_event_in_hand(tmp_path, amqp_url, monkeypatch):
    started, handled = threading.Event(), []

    def slow(journal, events):
        started.set()
        time.sleep(1.0)  # still at work when the drain begins
        handled.extend(event["id"] for event in events)

    monkeypatch.setattr(resolver, "on_tasks_resolved", slow)
    instance = f"drain{uuid.uuid4().hex[:10]}"
    settings = Settings(data_dir=tmp_path, amqp_url=amqp_url, instance_name=instance, host="127.0.0.1",
                        port=free_ports(1))
    process = bootstrap.bootstrap(settings)
    try:
        await bootstrap.start(process, ["dependency-resolver"])
        assert await process.health.report() == {"store": "ok", "broker": "ok"}
        queue = bootstrap._dependency_queue(settings)
        async with RabbitPublisher(amqp_url, instance=instance, queues=[queue]) as publisher:
            await publisher.publish([], [InternalEvent("Task.RunResolved", {
                "id": "T1", "taskGroupId": "G1", "position": 1, "type": "Task.RunResolved", "version": 4})])
        await until(started.is_set, "the handler to start")
        await bootstrap.stop(process)
        assert handled == ["T1"]  # finished, not cut off
        assert await waiting_messages(amqp_url, queue.name) == 0  # and acked: nothing comes back
    finally:
        await asyncio.to_thread(delete_service_queues, instance)
