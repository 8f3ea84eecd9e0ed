"""Publishing to RabbitMQ with publisher confirms: the nine public
Taskcluster exchanges and the internal `taskjournal.events` exchange. The
publisher also declares the service queues internal events are for, so
none is published before its queue exists, and an internal event that still
routes nowhere fails the publish (the relay retries the batch).

Consecutive internal events of one routing key go as one message, a JSON
array of up to PACK events (a lone event stays a JSON object): a consumer
pays its broker's per-message cost (delivery, FastStream's handling, the
ack) once per pack, not once per event (ADR 0017)."""

import asyncio
import logging
import secrets
from collections.abc import Iterable
from functools import partial
from typing import Any, NamedTuple, cast

import aio_pika
import aiormq
import orjson
from aiormq.abc import ChannelFrame
from pamqp.commands import Basic
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

Properties = Basic.Properties

from taskjournal.shared.logs import fields
from taskjournal.shared.messages import EXCHANGES, INTERNAL_EXCHANGE, InternalEvent, PulseMessage, exchange
from taskjournal.shared.metrics import REGISTRY

from .queues import ServiceQueue, internal_key

__all__ = ["RabbitPublisher", "UnroutableEvent", "QueueMismatch", "declare_exchanges", "declare_service_queue",
           "internal_key"]

log = logging.getLogger("taskjournal.bus")

REGISTRY.describe("taskjournal_bus_unroutable_total", "counter",
                  "internal events no service queue was bound for, by routing key (the batch is retried)",
                  labels=("routing_key",))
PACK = 16  # internal events sent as one message at most
SLICE = 50  # messages marshalled and sent per turn of the event loop (a batch is up to 500 events, more messages)
RECONNECT_INTERVAL = 1.0  # seconds between reconnection attempts (aio-pika's default is 5)


class UnroutableEvent(RuntimeError):
    """The broker returned a mandatory internal event: no queue is bound for it."""


class QueueMismatch(RuntimeError):
    """A service queue exists with other arguments than taskjournal declares it with."""


async def declare_exchanges(channel: aio_pika.abc.AbstractChannel) -> dict[str, aio_pika.abc.AbstractExchange]:
    """Declare the public exchanges (durable topic, as upstream) and the internal one."""
    declared = {}
    for name in [exchange(n) for n in EXCHANGES] + [INTERNAL_EXCHANGE]:
        declared[name] = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True,
                                                        auto_delete=False)
    return declared


async def declare_service_queue(channel: aio_pika.abc.AbstractRobustChannel, queue: ServiceQueue,
                                robust: bool = True) -> None:
    """Declare a service queue, its bindings to the internal exchange and its
    dead-letter queue (not bound: only the consumer puts events there).
    `robust`: the channel declares them again after each reconnection."""
    options: dict[str, Any] = {"durable": queue.durable, "arguments": queue.arguments, "robust": robust}
    try:
        declared = await channel.declare_queue(queue.name, **options)
        await channel.declare_queue(queue.dead_letter_name, **options)
    except aiormq.exceptions.ChannelPreconditionFailed as error:
        raise QueueMismatch(
            f"RabbitMQ queue {queue.name!r} (or its dead-letter queue) exists with other arguments than "
            f"durable={queue.durable} {queue.arguments}; delete it once drained, or use a new instance name "
            f"({error})") from error
    for key in queue.routing_keys:
        await declared.bind(INTERNAL_EXCHANGE, key, robust=robust)


class RabbitPublisher:
    """One robust connection, one channel with publisher confirms. `queues`
    are the service queues to declare (and re-declare after a returned event)."""

    def __init__(self, url: str, confirm_timeout: float = 15.0, instance: str = "",
                 queues: Iterable[ServiceQueue] = (), reconnect_interval: float = RECONNECT_INTERVAL,
                 connection_name: str = "taskjournal-relay"):
        self.url = url
        self.instance = instance  # prefixes internal routing keys: deployments may share a broker
        self.confirm_timeout = confirm_timeout
        self.queues = tuple(queues)
        self.reconnect_interval = reconnect_interval
        self.connection_name = connection_name
        self.connection: aio_pika.abc.AbstractRobustConnection | None = None
        self.channel: aio_pika.abc.AbstractRobustChannel | None = None
        self.exchanges: dict[str, aio_pika.abc.AbstractExchange] = {}
        self._queues_missing = False  # an event came back: declare the queues again before the next batch
        self._id_prefix, self._sent = f"{secrets.token_hex(8)}-", 0

    async def connect(self) -> "RabbitPublisher":
        self.connection = await aio_pika.connect_robust(
            self.url, client_properties={"connection_name": self.connection_name},
            reconnect_interval=self.reconnect_interval)
        self.channel = cast(aio_pika.abc.AbstractRobustChannel, await self.connection.channel(publisher_confirms=True))
        try:
            self.exchanges = await declare_exchanges(self.channel)
            await self.declare_queues()
        except Exception:
            await self.close()  # a caller retrying `connect` must not leak connections
            raise
        return self

    async def declare_queues(self, robust: bool = True) -> None:
        """Declare the service queues (idempotent). The robust channel declares
        them again after a reconnection (declared once as robust: each robust
        declaration is remembered)."""
        assert self.channel is not None, "declare_queues runs once connected"
        for queue in self.queues:
            await declare_service_queue(self.channel, queue, robust)
        self._queues_missing = False

    async def check(self) -> None:
        """Raise unless connected (a health check; a robust connection reconnects by itself)."""
        if self.connection is None or not self.connection.connected.is_set():
            raise ConnectionError("not connected to RabbitMQ")

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()
            self.connection = None

    async def __aenter__(self) -> "RabbitPublisher":
        return await self.connect()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def publish(self, messages: list[PulseMessage], internal: list[InternalEvent]) -> None:
        """Send the whole batch, then wait for every confirm (see `send`)."""
        await (await self.send(messages, internal))

    async def send(self, messages: list[PulseMessage], internal: list[InternalEvent]) -> asyncio.Future[None]:
        """Write the whole batch, in log order; return what to await for
        its confirms (raising if one failed, or an internal event routed
        nowhere). One channel delivers in publish order, so batches sent one
        after another keep each task's order while their confirms are
        awaited together: a round trip per batch at most, overlapped. A
        failed batch is sent again whole by the relay (at least once)."""
        if self._queues_missing and internal:
            await self.declare_queues(robust=False)  # e.g. a queue was deleted: restore it before publishing again
        assert self.channel is not None, "publish runs once connected"
        channel = cast(aiormq.Channel, await self.channel.get_underlay_channel())  # the robust channel's current one
        packs = _packs(internal)
        publishes = [self._pulse(m) for m in messages] + [self._internal(pack) for pack in packs]
        confirms: list[asyncio.Future] = []
        try:
            async with asyncio.timeout(self.confirm_timeout):
                for first in range(0, len(publishes), SLICE):
                    if first:
                        await asyncio.sleep(0)  # a slice at a time: requests on this loop wait one slice at most
                    confirms += await _send(channel, publishes[first:first + SLICE])
        except BaseException:
            for confirm in confirms:
                confirm.cancel()
            raise
        return asyncio.ensure_future(self._confirmed(confirms, packs))

    async def _confirmed(self, confirms: list[asyncio.Future], packs: list[list[InternalEvent]]) -> None:
        try:
            async with asyncio.timeout(self.confirm_timeout):
                results = await asyncio.gather(*confirms, return_exceptions=True)
        finally:
            for confirm in confirms:  # timed out: no late confirm may be left waiting
                confirm.cancel()
        for result in results:
            if isinstance(result, BaseException):  # e.g. the channel closed: nacked, or never confirmed
                raise result
        for result, pack in zip(results[len(results) - len(packs):], packs):
            if isinstance(result, aiormq.abc.DeliveredMessage):  # returned: no queue bound for it
                self._unroutable(pack[0])

    def _message_id(self) -> str:
        """Unique per message (aiormq matches returns to messages by it); cheaper than the uuid4 aiormq makes."""
        self._sent += 1
        return f"{self._id_prefix}{self._sent:x}"

    def _pulse(self, m: PulseMessage) -> "_Publish":
        properties = Properties(headers={"CC": list(m.cc)}, message_id=self._message_id(), **_PROPERTIES)
        return _Publish(m.exchange, m.routing_key, orjson.dumps(m.body), properties, False)

    def _internal(self, pack: list[InternalEvent]) -> "_Publish":
        key = pack[0].routing_key
        properties = Properties(message_type=key, message_id=self._message_id(), **_PROPERTIES)
        body = orjson.dumps(pack[0].body if len(pack) == 1 else [e.body for e in pack])
        return _Publish(INTERNAL_EXCHANGE, internal_key(self.instance, key), body, properties, True)

    def _unroutable(self, e: InternalEvent) -> None:
        key = internal_key(self.instance, e.routing_key)
        REGISTRY.inc("taskjournal_bus_unroutable_total", routing_key=e.routing_key)
        log.warning("internal event routed nowhere; the batch will be published again",
                    extra=fields(routingKey=key, position=e.body.get("position"), taskId=e.body.get("id")))
        self._queues_missing = True
        raise UnroutableEvent(f"no queue is bound for internal event {key!r} (position {e.body.get('position')})")


def _packs(internal: list[InternalEvent]) -> list[list[InternalEvent]]:
    """Runs of consecutive events with one routing key, PACK events at most each, in order."""
    packs: list[list[InternalEvent]] = []
    for event in internal:
        if packs and packs[-1][0].routing_key == event.routing_key and len(packs[-1]) < PACK:
            packs[-1].append(event)
        else:
            packs.append([event])
    return packs


class _Publish(NamedTuple):
    exchange: str
    routing_key: str
    body: bytes
    properties: Any
    mandatory: bool


async def _send(channel: aiormq.Channel, publishes: list[_Publish]) -> list[asyncio.Future]:
    """Publish on aiormq's channel as its `basic_publish` does (a delivery
    tag, a confirm future, the message id for returns), but all of them
    under one hold of the channel's lock and in one write: `basic_publish`
    takes the lock, writes and waits for the write to drain once per
    message, three turns of the event loop and a system call each, which
    made it the relay's heaviest cost. Returns the confirm futures."""
    frames: list = []
    confirms: list[asyncio.Future] = []
    async with channel.lock:
        first_tag = channel.delivery_tag
        for p in publishes:
            channel.delivery_tag += 1
            confirm = channel.create_future()
            channel.confirmations[channel.delivery_tag] = confirm
            channel.message_id_delivery_tag[p.properties.message_id] = channel.delivery_tag
            confirm.add_done_callback(partial(_forget, channel, p.properties.message_id, channel.delivery_tag))
            confirms.append(confirm)
            frames += [Basic.Publish(exchange=p.exchange, routing_key=p.routing_key, mandatory=p.mandatory),
                       ContentHeader(properties=p.properties, body_size=len(p.body)),
                       *_bodies(p.body, channel.max_content_size)]
        try:
            await channel.write_queue.put(ChannelFrame.marshall(channel_number=channel.number, frames=frames))
        except BaseException:  # nothing was sent: give the delivery tags back, as basic_publish does
            for tag in range(first_tag + 1, channel.delivery_tag + 1):
                channel.confirmations.pop(tag, None)
            channel.delivery_tag = first_tag
            for confirm in confirms:
                confirm.cancel()
            raise
    return confirms


def _bodies(body: bytes, size: int) -> list[ContentBody]:
    """The body frames of a message: at most `size` bytes each (the broker's frame_max)."""
    return [ContentBody(body[at:at + size]) for at in range(0, len(body), size)]


def _forget(channel: aiormq.Channel, message_id: str, tag: int, _: asyncio.Future) -> None:
    if channel.message_id_delivery_tag.get(message_id) == tag:
        channel.message_id_delivery_tag.pop(message_id)


_PROPERTIES: dict[str, Any] = {"delivery_mode": int(aio_pika.DeliveryMode.PERSISTENT),
                               "content_type": "application/json", "content_encoding": "utf-8"}

