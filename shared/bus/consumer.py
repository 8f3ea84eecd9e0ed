"""How a service consumes internal events: a FastStream subscriber on a
durable quorum queue bound to `taskjournal.events`."""

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from faststream import AckPolicy
from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange, RabbitQueue
from faststream.rabbit.schemas import QueueType

from taskjournal.shared.messages import INTERNAL_EXCHANGE

EVENTS_EXCHANGE = RabbitExchange(INTERNAL_EXCHANGE, type=ExchangeType.TOPIC, durable=True, auto_delete=False)


def internal_subscriber(broker: RabbitBroker, queue_name: str, routing_keys: Iterable[str],
                        handler: Callable[[dict], Awaitable[None]], retry_delay: float = 1.0):
    """Call `handler(body)` for each internal event whose routing key (e.g.
    "Task.RunResolved"; topic patterns such as "Task.*" work) matches one of
    `routing_keys`. Register before `broker.start()`.

    Delivery is at least once: the relay may publish an event again after a
    crash, and a handler that raises gets its event back (NACK with requeue,
    after `retry_delay` seconds so a failing handler does not spin). Handlers
    must therefore be idempotent, e.g. by comparing the event's `id` and
    `version` (or `position`) with what they already applied.

    The queue is a durable quorum queue (safe fail-over, RabbitMQ 3.10), so
    replicas sharing `queue_name` compete for events; per-task order holds
    for a single consumer. Returns the FastStream subscriber."""
    keys = list(routing_keys)
    if not keys:
        raise ValueError("internal_subscriber needs at least one routing key")

    def queue(key: str) -> RabbitQueue:
        return RabbitQueue(queue_name, queue_type=QueueType.QUORUM, durable=True, routing_key=key)

    # FastStream binds one routing key per subscriber: subscribers without a
    # handler only declare the other bindings and never consume.
    for key in keys[1:]:
        broker.subscriber(queue(key), EVENTS_EXCHANGE)

    async def consume(body: dict) -> None:
        try:
            await handler(body)
        except Exception:
            await asyncio.sleep(retry_delay)
            raise

    # FastStream's default (REJECT_ON_ERROR) would drop the event on an error.
    return broker.subscriber(queue(keys[0]), EVENTS_EXCHANGE, ack_policy=AckPolicy.NACK_ON_ERROR)(consume)
