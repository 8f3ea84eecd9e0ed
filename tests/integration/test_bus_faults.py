"""Faults between the relay, RabbitMQ and a consuming service, against the
real broker: an event published before its consumer ever started, a queue
deleted under the relay, the broker closing the relay's connection, and a
handler that keeps failing (dead-letter queue).

Each test uses an instance name of its own, so its service queues are its
own; they are deleted afterwards."""

import asyncio
import logging
import time
import uuid

import aio_pika
import orjson
import pytest
from faststream.rabbit import RabbitBroker
from yarl import URL

from taskjournal.services.dependency_resolver.resolver import ROUTING_KEYS
from taskjournal.services.relay import Relay
from taskjournal.shared.bus.consumer import ATTEMPTS, LAST_ERROR, ORIGINAL_ROUTING_KEY, service_subscriber
from taskjournal.shared.bus.queues import service_queue
from taskjournal.shared.bus.rabbit import RabbitPublisher, UnroutableEvent
from taskjournal.shared.journal import open_journal
from taskjournal.shared.messages import InternalEvent
from taskjournal.shared.metrics import REGISTRY
from tests.support.amqp import delete_service_queues, receive
from tests.support.relay import Running, Scenario, until


@pytest.fixture
def instance(amqp_url):
    name = f"tj-test-{uuid.uuid4().hex[:12]}"
    yield name
    delete_service_queues(name)


def resolver_queue(instance: str):
    return service_queue(instance, "dependency-resolver", ROUTING_KEYS)


def resolved(task_id: str, position: int = 1) -> InternalEvent:
    return InternalEvent("Task.RunResolved", {"id": task_id, "taskGroupId": task_id, "version": 4,
                                              "type": "Task.RunResolved", "position": position})


def counter(name: str, **labels) -> float:
    return REGISTRY.value(name, **labels)


async def started(broker: RabbitBroker) -> RabbitBroker:
    await broker.start()
    return broker


# ------------------------------------------------------------ item 1: no event before its queue exists
async def test_an_event_relayed_before_the_consumer_ever_started_reaches_it(instance, amqp_url, tmp_path):
    """A fresh instance: the relay publishes a RunResolved before any
    dependency-resolver declared its queue; the resolver started later gets it."""
    journal = open_journal(None, str(tmp_path))
    queue = resolver_queue(instance)
    async with RabbitPublisher(amqp_url, instance=instance, queues=[queue]) as publisher:
        running = Running(Relay(journal, publisher, internal_events=ROUTING_KEYS))
        try:
            task_id = Scenario().run_lifecycle(journal)
            await until(lambda: running.relay.position == 5)
        finally:
            await running.stop()
            journal.close()

    got = asyncio.Queue()
    broker = RabbitBroker(amqp_url, logger=None)
    service_subscriber(broker, queue, got.put)
    await started(broker)
    try:
        event = await asyncio.wait_for(got.get(), 15)
    finally:
        await broker.stop()
    assert (event["type"], event["id"], event["state"]) == ("Task.RunResolved", task_id, "completed")


async def test_the_consumer_declares_the_queue_exactly_as_the_publisher(instance, amqp_url, channel):
    """Either side may declare first; a different argument would make the second fail (PRECONDITION_FAILED)."""
    queue = resolver_queue(instance)
    broker = RabbitBroker(amqp_url, logger=None)
    service_subscriber(broker, queue, lambda body: asyncio.sleep(0))
    await started(broker)
    try:
        async with RabbitPublisher(amqp_url, instance=instance, queues=[queue]) as publisher:
            await publisher.publish([], [resolved("t")])
    finally:
        await broker.stop()
    declared = await channel.declare_queue(queue.name, passive=True)
    assert declared.name == queue.name


async def test_a_queue_declared_with_other_arguments_is_a_clear_error(instance, amqp_url, channel):
    from taskjournal.shared.bus.rabbit import QueueMismatch

    queue = resolver_queue(instance)
    await channel.declare_queue(queue.name, durable=True)  # classic: as an older or foreign deployment might
    publisher = RabbitPublisher(amqp_url, instance=instance, queues=[queue])
    with pytest.raises(QueueMismatch, match=queue.name):
        await publisher.connect()
    assert publisher.connection is None  # closed: a caller retrying connect leaks nothing


async def test_a_deleted_queue_fails_the_publish_then_is_declared_again(instance, amqp_url, channel):
    queue = resolver_queue(instance)
    async with RabbitPublisher(amqp_url, instance=instance, queues=[queue]) as publisher:
        await channel.queue_delete(queue.name)
        before = counter("taskjournal_bus_unroutable_total", routing_key="Task.RunResolved")
        with pytest.raises(UnroutableEvent):
            await publisher.publish([], [resolved("lost?", 7)])
        assert counter("taskjournal_bus_unroutable_total", routing_key="Task.RunResolved") == before + 1
        await publisher.publish([], [resolved("kept", 7)])  # the retry declares the queue again
    restored = await channel.declare_queue(queue.name, passive=True)
    got = await receive(restored, 1)
    assert [orjson.loads(m.body)["id"] for m in got] == ["kept"]


async def test_the_relay_does_not_advance_past_an_unroutable_internal_event(instance, amqp_url, tmp_path):
    journal = open_journal(None, str(tmp_path))
    # a publisher that declares no queue: nothing is bound for this instance's RunResolved
    async with RabbitPublisher(amqp_url, instance=instance) as publisher:
        errors = counter("taskjournal_relay_errors_total")
        running = Running(Relay(journal, publisher, internal_events=ROUTING_KEYS))
        try:
            Scenario().run_lifecycle(journal)  # positions 1..5, the RunResolved is 5
            await until(lambda: counter("taskjournal_relay_errors_total") >= errors + 2)  # retried, still failing
            assert running.relay.position in (0, None)  # the whole batch (one batch) is unconfirmed
            assert running.relay.load_position() == 0
        finally:
            await running.stop()
            journal.close()


# ------------------------------------------------------------ item 2: reconnect quickly
class BrokerLink:
    """A TCP proxy in front of RabbitMQ the test can cut (connections dropped,
    new ones refused, as when the broker is down) and restore, without
    touching the broker other tests share."""

    def __init__(self, host: str, port: int):
        self.target, self.port = (host, port), 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        self.server.close()
        await self.server.wait_closed()
        for writer in list(self.writers):
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, upstream_writer}
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self.writers.discard(writer)
            writer.transport.abort()


OUTAGE = 5.5  # seconds: longer than aio-pika's default reconnect interval (5 s)


async def test_the_relay_publishes_again_soon_after_the_broker_accepts_again(instance, amqp_url, tmp_path):
    """The broker is unreachable for a while, then accepts again: the robust
    connection retries every second (not aio-pika's 5 s) and the relay's
    retry delay is capped at 1 s, so the batch is confirmed about a second later."""
    url = URL(amqp_url)
    link = BrokerLink(url.host, url.port or 5672)
    await link.open()
    journal = open_journal(None, str(tmp_path))
    queue = resolver_queue(instance)
    async with RabbitPublisher(str(url.with_port(link.port)), instance=instance, queues=[queue]) as publisher:
        running = Running(Relay(journal, publisher, internal_events=ROUTING_KEYS))
        try:
            await until(lambda: running.relay.position == 0)
            await link.cut()
            await asyncio.to_thread(Scenario().run_lifecycle, journal)
            await asyncio.sleep(OUTAGE)  # the outage itself, not synchronisation
            assert running.relay.position == 0  # nothing could be confirmed meanwhile
            await link.open()
            reopened = time.monotonic()
            await until(lambda: running.relay.position == 5, timeout=15)
            resumed_after = time.monotonic() - reopened
        finally:
            await running.stop()
            journal.close()
            await link.cut()
    assert resumed_after < 2.5, f"publishing resumed {resumed_after:.1f} s after the broker accepted again"


# ------------------------------------------------------------ item 3: failures are visible, then parked
async def _consume(amqp_url, queue, handler, until_done: asyncio.Event, **options) -> None:
    broker = RabbitBroker(amqp_url, logger=None, graceful_timeout=10)  # stop() lets the last ack go out
    service_subscriber(broker, queue, handler, **options)
    await started(broker)
    try:
        await asyncio.wait_for(until_done.wait(), 30)
    finally:
        await broker.stop()


async def test_an_event_that_keeps_failing_is_logged_counted_and_dead_lettered(instance, amqp_url, channel,
                                                                               caplog):
    queue = resolver_queue(instance)
    calls, parked = [], asyncio.Event()

    async def broken(body: dict) -> None:
        calls.append(body["id"])
        raise RuntimeError("the database said no")

    failures = counter("taskjournal_consumer_failures_total", queue=queue.name)
    dead = counter("taskjournal_dead_letters_total", queue=queue.name)
    async with RabbitPublisher(amqp_url, instance=instance, queues=[queue]) as publisher:
        await publisher.publish([], [resolved("poison", 42)])

    async def watch() -> None:
        await until(lambda: counter("taskjournal_dead_letters_total", queue=queue.name) == dead + 1, timeout=30)
        parked.set()

    with caplog.at_level(logging.WARNING, logger="taskjournal.bus.consumer"):
        watcher = asyncio.ensure_future(watch())
        await _consume(amqp_url, queue, broken, parked, retry_delay=0.05, max_attempts=3)
        await watcher

    assert calls == ["poison"] * 3
    assert counter("taskjournal_consumer_failures_total", queue=queue.name) == failures + 3
    failed = [r for r in caplog.records if r.getMessage() == "handling an internal event failed"]
    assert len(failed) == 3 and all(r.exc_info and "the database said no" in str(r.exc_info[1]) for r in failed)
    assert [(r.fields["taskId"], r.fields["position"], r.fields["routingKey"]) for r in failed] == [
        ("poison", 42, f"{instance}.Task.RunResolved")] * 3
    dead_queue = await channel.declare_queue(queue.dead_letter_name, passive=True)
    letter, = await receive(dead_queue, 1)
    assert orjson.loads(letter.body)["id"] == "poison" and letter.type == "Task.RunResolved"
    assert letter.headers[ORIGINAL_ROUTING_KEY] == f"{instance}.Task.RunResolved"
    assert letter.headers[ATTEMPTS] == 3 and "the database said no" in letter.headers[LAST_ERROR]
    assert letter.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    service = await channel.declare_queue(queue.name, passive=True)
    assert await receive(service, 0) == []  # acknowledged there once parked


async def test_a_body_that_is_not_json_is_a_failure_like_any_other_then_parked(instance, amqp_url, channel):
    """The consumer parses bodies itself (shared/bus/consumer.py): one that is
    not JSON never reaches the handler, is counted on each attempt and parked."""
    queue = resolver_queue(instance)
    calls, parked = [], asyncio.Event()

    async def handler(body: dict) -> None:
        calls.append(body)

    failures = counter("taskjournal_consumer_failures_total", queue=queue.name)
    dead = counter("taskjournal_dead_letters_total", queue=queue.name)
    async with RabbitPublisher(amqp_url, instance=instance, queues=[queue]):
        pass  # declares the queue
    await channel.default_exchange.publish(
        aio_pika.Message(b"{not json", content_type="application/json", type="Task.RunResolved"), queue.name)

    async def watch() -> None:
        await until(lambda: counter("taskjournal_dead_letters_total", queue=queue.name) == dead + 1, timeout=30)
        parked.set()

    watcher = asyncio.ensure_future(watch())
    await _consume(amqp_url, queue, handler, parked, retry_delay=0.05, max_attempts=2)
    await watcher
    assert calls == []
    assert counter("taskjournal_consumer_failures_total", queue=queue.name) == failures + 2
    letter, = await receive(await channel.declare_queue(queue.dead_letter_name, passive=True), 1)
    assert letter.body == b"{not json"


async def test_an_event_failing_twice_then_succeeding_is_handled_once(instance, amqp_url, channel):
    queue = resolver_queue(instance)
    calls, handled = [], asyncio.Event()

    async def flaky(body: dict) -> None:
        calls.append(body["id"])
        if len(calls) <= 2:
            raise RuntimeError("not yet")
        handled.set()

    dead = counter("taskjournal_dead_letters_total", queue=queue.name)
    async with RabbitPublisher(amqp_url, instance=instance, queues=[queue]) as publisher:
        await publisher.publish([], [resolved("flaky", 9)])
    await _consume(amqp_url, queue, flaky, handled, retry_delay=0.05, max_attempts=3)

    assert calls == ["flaky"] * 3
    assert counter("taskjournal_dead_letters_total", queue=queue.name) == dead
    dead_queue = await channel.declare_queue(queue.dead_letter_name, passive=True)
    assert await receive(dead_queue, 0) == []
    service = await channel.declare_queue(queue.name, passive=True)
    assert await receive(service, 0) == []


async def test_consecutive_events_travel_as_packs_and_each_is_handled(instance, amqp_url, channel):
    """A batch's RunResolved events go PACK to a message (a lone one stays an
    object); the consumer hands the handler every event of a pack."""
    from taskjournal.shared.bus.rabbit import PACK

    queue = resolver_queue(instance)
    count = PACK + 1
    async with RabbitPublisher(amqp_url, instance=instance, queues=[queue]) as publisher:
        await publisher.publish([], [resolved(f"t{i}", i) for i in range(count)])
    service = await channel.declare_queue(queue.name, passive=True)
    assert service.declaration_result.message_count == 2

    calls, done = [], asyncio.Event()

    async def handler(body: dict) -> None:
        calls.append(body["position"])
        if len(calls) == count:
            done.set()

    await _consume(amqp_url, queue, handler, done)
    assert sorted(calls) == list(range(count))


async def test_a_pack_with_a_failing_event_comes_back_whole(instance, amqp_url, channel):
    """One event of a pack fails: the others are handled, the message comes
    back, and the next delivery hands every event again (handlers are idempotent)."""
    queue = resolver_queue(instance)
    calls, handled = [], asyncio.Event()

    async def flaky(body: dict) -> None:
        calls.append(body["id"])
        if body["id"] == "b" and calls.count("b") == 1:
            raise RuntimeError("not yet")
        if calls.count("b") == 2 and len(calls) == 6:
            handled.set()

    async with RabbitPublisher(amqp_url, instance=instance, queues=[queue]) as publisher:
        await publisher.publish([], [resolved("a", 1), resolved("b", 2), resolved("c", 3)])
    await _consume(amqp_url, queue, flaky, handled, retry_delay=0.05, max_attempts=3)
    assert sorted(calls) == ["a", "a", "b", "b", "c", "c"]
    service = await channel.declare_queue(queue.name, passive=True)
    assert await receive(service, 0) == []


async def test_dead_letters_can_be_listed_and_requeued_once_the_cause_is_fixed(instance, amqp_url, channel):
    from taskjournal.shared.bus.deadletter import list_dead_letters, requeue_dead_letters

    queue = resolver_queue(instance)
    fixed, got, parked, handled = False, [], asyncio.Event(), asyncio.Event()

    async def handler(body: dict) -> None:
        if not fixed:
            parked.set()  # set before raising: the broker is stopped only after the event is parked
            raise RuntimeError("bug")
        got.append(body["id"])
        handled.set()

    async with RabbitPublisher(amqp_url, instance=instance, queues=[queue]) as publisher:
        await publisher.publish([], [resolved("parked", 3)])
    await _consume(amqp_url, queue, handler, parked, retry_delay=0.05, max_attempts=1)

    listed = await list_dead_letters(amqp_url, queue)
    assert [(orjson.loads(d["body"])["id"], d["attempts"], d["routingKey"]) for d in listed] == [
        ("parked", 1, f"{instance}.Task.RunResolved")]
    assert "RuntimeError: bug" in listed[0]["error"]
    assert len(await list_dead_letters(amqp_url, queue)) == 1  # listing leaves them parked

    fixed = True
    assert await requeue_dead_letters(amqp_url, queue) == 1
    assert await list_dead_letters(amqp_url, queue) == []
    await _consume(amqp_url, queue, handler, handled)
    assert got == ["parked"]
