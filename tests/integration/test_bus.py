"""The bus against the real RabbitMQ: exchanges, message properties, CC
routes, order, unroutable internal events and the FastStream consumer
helper's redelivery on errors; plus the in-process bus.

Exchange names are fixed, so each test binds its own exclusive queues with
keys made unique by a fresh id: parallel runs never see each other's
messages."""

import asyncio
import uuid

import aio_pika
import orjson
import pytest

from taskjournal.shared.bus import InProcessBus
from taskjournal.shared.messages import (
    EXCHANGES,
    INTERNAL_EXCHANGE,
    InternalEvent,
    PulseMessage,
    exchange,
)
from taskjournal.shared.metrics import REGISTRY
from tests.support.amqp import receive


async def bound_queue(channel, bindings):
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    for exchange_name, key in bindings:
        await queue.bind(exchange_name, key)
    return queue


def unique() -> str:
    return uuid.uuid4().hex[:12]


async def test_exchanges_are_declared_durable_topic(publisher, channel):
    for name in [exchange(n) for n in EXCHANGES] + [INTERNAL_EXCHANGE]:
        # re-declaring with other arguments would close the channel (PRECONDITION_FAILED)
        await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True, auto_delete=False)
    assert len(publisher.exchanges) == len(EXCHANGES) + 1  # the public ones and the internal one


async def test_pulse_message_properties_cc_and_primary_key(publisher, channel):
    tag = unique()
    completed = exchange("task-completed")
    by_route = await bound_queue(channel, [(completed, f"route.index.{tag}")])
    by_primary = await bound_queue(channel, [(completed, f"primary.{tag}.#")])
    body = {"version": 1, "status": {"taskId": tag}, "runId": 0}
    message = PulseMessage(completed, f"primary.{tag}.0.wg.wid.p.w.s.g._", body, [f"route.index.{tag}", "route.x"])
    await publisher.publish([message], [])
    for queue in (by_route, by_primary):
        got, = await receive(queue, 1)
        assert orjson.loads(got.body) == body
        assert got.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert (got.content_type, got.content_encoding) == ("application/json", "utf-8")
        assert got.headers["CC"] == [f"route.index.{tag}", "route.x"]
        assert got.routing_key == message.routing_key


async def test_batch_keeps_each_tasks_order_across_exchanges(publisher, channel):
    tags = [unique() for _ in range(3)]
    names = ["task-defined", "task-pending", "task-running", "task-exception", "task-pending", "task-running",
             "task-completed"]
    queue = await bound_queue(channel, [(exchange(n), f"route.{tag}") for n in set(names) for tag in tags])
    batch = [PulseMessage(exchange(n), f"primary.{tag}.{i}._._.p.w.s.g._", {"i": i, "tag": tag}, [f"route.{tag}"])
             for i, n in enumerate(names) for tag in tags]  # the tasks interleaved, as in the log
    await publisher.publish(batch, [])
    got = [orjson.loads(m.body) for m in await receive(queue, len(batch))]
    assert len(got) == len(batch)
    for tag in tags:
        assert [b["i"] for b in got if b["tag"] == tag] == list(range(len(names)))


async def test_a_batch_of_many_slices_arrives_whole_in_order_and_leaves_no_bookkeeping(publisher, channel):
    """The publisher writes each slice of a batch at once, past aiormq's
    basic_publish: every message is confirmed, they arrive in batch order,
    and no confirm or returned-message entry is left on the channel."""
    from taskjournal.shared.bus.rabbit import PACK, SLICE

    tag = unique()
    key = f"Probe{tag}.Happened"
    public = await bound_queue(channel, [(exchange("task-pending"), f"route.{tag}")])
    internal = await bound_queue(channel, [(INTERNAL_EXCHANGE, key)])
    count = 3 * SLICE + 7
    messages = [PulseMessage(exchange("task-pending"), f"primary.{tag}.{i}", {"i": i}, [f"route.{tag}"])
                for i in range(count)]
    events = [InternalEvent(key, {"id": tag, "version": i, "type": key, "position": i}) for i in range(count)]
    underlay = await publisher.channel.get_underlay_channel()
    writes, put = [], underlay.write_queue.put
    underlay.write_queue.put = lambda frame: writes.append(frame) or put(frame)
    try:
        await publisher.publish(messages, events)
    finally:
        del underlay.write_queue.put
    packs = -(-count // PACK)  # the internal events go PACK to a message
    assert len(writes) == -(-(count + packs) // SLICE)  # one write per slice, not one (and a drain) per message
    assert [orjson.loads(m.body)["i"] for m in await receive(public, count)] == list(range(count))
    bodies = [orjson.loads(m.body) for m in await receive(internal, packs)]
    assert [event["position"] for pack in bodies for event in pack] == list(range(count))
    assert not underlay.confirmations and not underlay.message_id_delivery_tag
    await publisher.publish(messages[:1], events[:1])  # the channel's delivery tags still match the broker's
    assert len(await receive(public, 1)) == 1


async def test_a_body_larger_than_a_frame_arrives_whole(publisher, channel):
    tag = unique()
    queue = await bound_queue(channel, [(exchange("task-defined"), f"route.{tag}")])
    body = {"tag": tag, "filler": "x" * 300_000}  # more than RabbitMQ's frame_max (128 KiB): several body frames
    await publisher.publish([PulseMessage(exchange("task-defined"), f"primary.{tag}", body, [f"route.{tag}"])], [])
    got, = await receive(queue, 1)
    assert orjson.loads(got.body) == body


async def test_a_publish_on_a_closed_channel_fails_and_the_next_batch_is_sent(publisher, channel):
    """The broker closes the channel under the publisher (an unknown
    exchange): that batch fails, the robust channel reopens, the next one
    is confirmed."""
    tag = unique()
    queue = await bound_queue(channel, [(exchange("task-pending"), f"route.{tag}")])
    message = PulseMessage(exchange("task-pending"), f"primary.{tag}", {"tag": tag}, [f"route.{tag}"])
    with pytest.raises(Exception):
        await publisher.publish([PulseMessage(f"no-such-exchange-{tag}", "k", {}, []), message], [])
    for _ in range(50):
        try:
            await publisher.publish([message], [])
            break
        except Exception:
            await asyncio.sleep(0.1)  # the robust channel reopens
    assert [orjson.loads(m.body)["tag"] for m in await receive(queue, 1)] == [tag]


async def test_unroutable_internal_event_is_counted_and_fails_the_publish(publisher):
    from taskjournal.shared.bus.rabbit import UnroutableEvent

    key = f"Probe{unique()}.Happened"
    before = REGISTRY.value("taskjournal_bus_unroutable_total", routing_key=key)
    with pytest.raises(UnroutableEvent):  # never acknowledged as sent: the relay publishes the batch again
        await publisher.publish([], [InternalEvent(key, {"id": "x", "version": 1, "type": key, "position": 1})])
    assert REGISTRY.value("taskjournal_bus_unroutable_total", routing_key=key) == before + 1


async def test_internal_event_reaches_a_bound_queue(publisher, channel):
    key = f"Probe{unique()}.Happened"
    queue = await bound_queue(channel, [(INTERNAL_EXCHANGE, key)])
    event = InternalEvent(key, {"id": "x", "version": 3, "type": key, "position": 9, "reason": "r"})
    await publisher.publish([], [event])
    got, = await receive(queue, 1)
    assert orjson.loads(got.body) == event.body and got.type == key
    assert got.delivery_mode == aio_pika.DeliveryMode.PERSISTENT


async def test_internal_subscriber_redelivers_after_a_handler_error(publisher, channel, amqp_url):
    from faststream.rabbit import RabbitBroker

    from taskjournal.shared.bus.consumer import internal_subscriber

    prefix = f"Probe{unique()}"
    queue_name = f"tj-test-{prefix}"
    calls, done = [], asyncio.Event()

    async def handler(body: dict) -> None:
        calls.append((body["type"], body["version"]))
        if len(calls) == 1:
            raise RuntimeError("a handler failing once must not lose the event")
        if len(calls) == 3:
            done.set()

    broker = RabbitBroker(amqp_url, logger=None)
    internal_subscriber(broker, queue_name, [f"{prefix}.A", f"{prefix}.B"], handler, retry_delay=0.05)
    await broker.start()
    try:
        await publisher.publish([], [InternalEvent(f"{prefix}.A", {"id": "t", "version": 1, "type": f"{prefix}.A"}),
                                     InternalEvent(f"{prefix}.B", {"id": "t", "version": 2, "type": f"{prefix}.B"})])
        await asyncio.wait_for(done.wait(), 15)
    finally:
        await broker.stop()
        await channel.queue_delete(queue_name)
    # events are handled concurrently: whichever failed came back, the other came once
    assert calls[0] in [(f"{prefix}.A", 1), (f"{prefix}.B", 2)]
    assert sorted(calls[1:]) == [(f"{prefix}.A", 1), (f"{prefix}.B", 2)]


async def test_internal_subscriber_queue_is_quorum(amqp_url, channel):
    from faststream.rabbit import RabbitBroker

    from taskjournal.shared.bus.consumer import internal_subscriber

    queue_name = f"tj-test-{unique()}"

    async def handler(body: dict) -> None:
        pass

    broker = RabbitBroker(amqp_url, logger=None)
    internal_subscriber(broker, queue_name, ["Nothing.Here"], handler)
    await broker.start()
    await broker.stop()
    try:
        # a quorum queue re-declared as classic fails with PRECONDITION_FAILED
        await channel.declare_queue(queue_name, durable=True, arguments={"x-queue-type": "quorum"})
    finally:
        await channel.queue_delete(queue_name)


async def test_in_process_bus_routes_like_topic_bindings():
    bus = InProcessBus()
    pulses, events = [], []
    bus.subscribe_pulse(pulses.append, exchange("task-completed"), "route.index.#")
    bus.subscribe_internal(["Task.*"], events.append)

    async def async_handler(body):
        events.append(("async", body["type"]))
    bus.subscribe_internal(["*.RunResolved"], async_handler)

    hit = PulseMessage(exchange("task-completed"), "primary.t.0._._.p.w.s.g._", {"a": 1}, ["route.index.x.y"])
    other_exchange = PulseMessage(exchange("task-failed"), "primary.t.0._._.p.w.s.g._", {}, ["route.index.x"])
    no_route = PulseMessage(exchange("task-completed"), "primary.t.0._._.p.w.s.g._", {}, ["route.other"])
    resolved = InternalEvent("Task.RunResolved", {"type": "Task.RunResolved"})
    sealed = InternalEvent("TaskGroup.Sealed", {"type": "TaskGroup.Sealed"})
    await bus.publish([hit, other_exchange, no_route], [resolved, sealed])
    assert pulses == [hit]
    assert events == [resolved.body, ("async", "Task.RunResolved")]


async def test_in_process_handler_error_fails_the_publish():
    bus = InProcessBus()

    def broken(body):
        raise RuntimeError("boom")
    bus.subscribe_internal(["#"], broken)
    with pytest.raises(RuntimeError):
        await bus.publish([], [InternalEvent("Task.Defined", {})])
