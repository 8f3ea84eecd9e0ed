"""Publishing to RabbitMQ with publisher confirms: the nine public
Taskcluster exchanges and the internal `taskjournal.events` exchange."""

import asyncio
import logging

import aio_pika
import aiormq
import orjson

from taskjournal.shared.logs import fields
from taskjournal.shared.messages import EXCHANGES, INTERNAL_EXCHANGE, InternalEvent, PulseMessage, exchange
from taskjournal.shared.metrics import REGISTRY

log = logging.getLogger("taskjournal.bus")

REGISTRY.describe("taskjournal_bus_unroutable_total", "counter",
                  "internal events no service queue was bound for, by routing key")


async def declare_exchanges(channel: aio_pika.abc.AbstractChannel) -> dict[str, aio_pika.abc.AbstractExchange]:
    """Declare the public exchanges (durable topic, as upstream) and the internal one."""
    declared = {}
    for name in [exchange(n) for n in EXCHANGES] + [INTERNAL_EXCHANGE]:
        declared[name] = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True,
                                                        auto_delete=False)
    return declared


def internal_key(instance: str, routing_key: str) -> str:
    """The routing key of an internal event of one deployment (`<instance>.Task.RunResolved`)."""
    return f"{instance}.{routing_key}" if instance else routing_key


class RabbitPublisher:
    """One robust connection, one channel with publisher confirms."""

    def __init__(self, url: str, confirm_timeout: float = 15.0, instance: str = ""):
        self.url = url
        self.instance = instance  # prefixes internal routing keys: deployments may share a broker
        self.confirm_timeout = confirm_timeout
        self.connection: aio_pika.abc.AbstractRobustConnection | None = None
        self.exchanges: dict[str, aio_pika.abc.AbstractExchange] = {}

    async def connect(self) -> "RabbitPublisher":
        self.connection = await aio_pika.connect_robust(
            self.url, client_properties={"connection_name": "taskjournal-relay"})
        channel = await self.connection.channel(publisher_confirms=True)
        self.exchanges = await declare_exchanges(channel)
        return self

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()
            self.connection = None

    async def __aenter__(self) -> "RabbitPublisher":
        return await self.connect()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def publish(self, messages: list[PulseMessage], internal: list[InternalEvent]) -> None:
        """Send the whole batch at once, in log order, then wait for every
        confirm: one channel delivers in publish order, so pipelining keeps
        each task's order while costing one round trip per batch. A failed
        batch is sent again whole by the relay (at least once)."""
        sends = [self._send_pulse(m) for m in messages] + [self._send_internal(e) for e in internal]
        try:
            async with asyncio.TaskGroup() as group:
                for send in sends:
                    group.create_task(send)  # tasks start in creation order, so frames go out in order
        except ExceptionGroup as failed:
            raise failed.exceptions[0]

    async def _send_pulse(self, m: PulseMessage) -> None:
        message = aio_pika.Message(orjson.dumps(m.body), headers={"CC": list(m.cc)}, **_PROPERTIES)
        await self.exchanges[m.exchange].publish(message, m.routing_key, mandatory=False,
                                                 timeout=self.confirm_timeout)

    async def _send_internal(self, e: InternalEvent) -> None:
        message = aio_pika.Message(orjson.dumps(e.body), type=e.routing_key, **_PROPERTIES)
        key = internal_key(self.instance, e.routing_key)
        result = await self.exchanges[INTERNAL_EXCHANGE].publish(message, key, mandatory=True,
                                                                 timeout=self.confirm_timeout)
        if isinstance(result, aiormq.abc.DeliveredMessage):  # returned: no queue bound for it
            REGISTRY.inc("taskjournal_bus_unroutable_total", routing_key=e.routing_key)
            log.debug("internal event routed nowhere",
                      extra=fields(routingKey=e.routing_key, position=e.body.get("position")))


_PROPERTIES = {"delivery_mode": aio_pika.DeliveryMode.PERSISTENT, "content_type": "application/json",
               "content_encoding": "utf-8"}

