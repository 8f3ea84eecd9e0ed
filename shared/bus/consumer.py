"""How a service consumes internal events: a FastStream subscriber on a
durable quorum queue bound to `taskjournal.events` (declared from the same
`ServiceQueue` definition the relay's publisher declares it with).

A handler that raises gets its event back after a short delay; every failure
is logged and counted; an event that failed `max_attempts` times is parked
in the queue's dead-letter queue (`<queue>.dead`), never dropped."""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import aiormq
import orjson
from faststream import AckPolicy
from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange, RabbitQueue
from faststream.rabbit.schemas import QueueType

from taskjournal.shared.logs import fields
from taskjournal.shared.messages import INTERNAL_EXCHANGE
from taskjournal.shared.metrics import REGISTRY

from .queues import ServiceQueue

log = logging.getLogger("taskjournal.bus.consumer")

EVENTS_EXCHANGE = RabbitExchange(INTERNAL_EXCHANGE, type=ExchangeType.TOPIC, durable=True, auto_delete=False)
MAX_ATTEMPTS = 10  # with the 1 s retry delay: an event keeps failing ~10 s before it is parked

# headers of a dead-lettered event: where it came from and why it was parked
ORIGINAL_ROUTING_KEY = "x-taskjournal-routing-key"
ORIGINAL_QUEUE = "x-taskjournal-queue"
ATTEMPTS = "x-taskjournal-attempts"
LAST_ERROR = "x-taskjournal-error"

REGISTRY.describe("taskjournal_consumer_failures_total", "counter",
                  "internal events a service handler failed on (each attempt), by queue", labels=("queue",))
REGISTRY.describe("taskjournal_dead_letters_total", "counter",
                  "internal events parked in a dead-letter queue after repeated failures, by queue",
                  labels=("queue",))


def internal_subscriber(broker: RabbitBroker, queue_name: str, routing_keys: Iterable[str],
                        handler: Callable[[dict], Awaitable[None]], retry_delay: float = 1.0,
                        max_attempts: int = MAX_ATTEMPTS):
    """Call `handler(body)` for each internal event whose routing key (e.g.
    "Task.RunResolved"; topic patterns such as "Task.*" work) matches one of
    `routing_keys`. Register before `broker.start()`. See `service_subscriber`."""
    keys = tuple(routing_keys)
    if not keys:
        raise ValueError("internal_subscriber needs at least one routing key")
    return service_subscriber(broker, ServiceQueue(queue_name, keys), handler, retry_delay, max_attempts)


def rabbit_queue(queue: ServiceQueue, routing_key: str = "", name: str = "") -> RabbitQueue:
    """The FastStream declaration of a service queue (or of another `name`
    with its arguments): the same arguments the publisher declares."""
    return RabbitQueue(  # type: ignore[call-overload]  # the overloads want the queue type as a literal
        name or queue.name, queue_type=QueueType(queue.arguments["x-queue-type"]), durable=queue.durable,
        arguments={k: v for k, v in queue.arguments.items() if k != "x-queue-type"}, routing_key=routing_key)


def service_subscriber(broker: RabbitBroker, queue: ServiceQueue, handler: Callable[[dict], Awaitable[None]],
                       retry_delay: float = 1.0, max_attempts: int = MAX_ATTEMPTS):
    """Consume `queue` with `handler(body)`.

    Delivery is at least once: the relay may publish an event again after a
    crash, and a handler that raises gets its event back (NACK with requeue,
    after `retry_delay` seconds so a failing handler does not spin). Handlers
    must therefore be idempotent, e.g. by comparing the event's `id` and
    `version` (or `position`) with what they already applied. The attempt
    count is the quorum queue's `x-delivery-count`: it survives restarts and
    is shared by the replicas.

    The queue is a durable quorum queue (safe fail-over, RabbitMQ 3.10), so
    replicas sharing it compete for events; per-task order holds for a
    single consumer. Returns the FastStream subscriber."""
    # FastStream binds one routing key per subscriber: subscribers without a
    # handler only declare the other bindings and never consume.
    for key in queue.routing_keys[1:]:
        broker.subscriber(rabbit_queue(queue, key), EVENTS_EXCHANGE)

    # The handler takes the body undecoded and no context parameter: FastStream
    # would resolve an injected `message` on a worker thread, per event (about
    # a tenth of a dependency-resolver's CPU, and a thread hop of latency); the
    # message is in the broker's context anyway. The body is parsed here, so a
    # body that is not JSON is a failure like any other (retried, then parked).
    async def consume(body: Any) -> None:
        message = broker.context.get_local("message")
        attempt = _delivery_count(message) + 1
        try:
            await _handle_each(handler, orjson.loads(body))
        except Exception as error:
            _record_failure(queue, message, attempt, error)
            if attempt >= max_attempts:
                await _dead_letter(broker, queue, message, attempt, error)
                return  # parked: acknowledged on the service queue
            await asyncio.sleep(retry_delay)
            raise

    # FastStream's default (REJECT_ON_ERROR) would drop the event on an error.
    return broker.subscriber(rabbit_queue(queue, queue.routing_keys[0]), EVENTS_EXCHANGE,
                             ack_policy=AckPolicy.NACK_ON_ERROR, decoder=_body)(consume)


async def _handle_each(handler: Callable[[dict], Awaitable[None]], decoded: Any) -> None:
    """One event (a JSON object) or a pack of them (an array, see
    shared/bus/rabbit.py): each handled at once; the first failure raises
    once all are done, and the whole message comes back (handlers are idempotent)."""
    if not isinstance(decoded, list):
        await handler(decoded)
        return
    for outcome in await asyncio.gather(*(handler(event) for event in decoded), return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome


async def _body(message) -> bytes:
    """The body as it came (FastStream's decoder would parse JSON before the handler could count a failure)."""
    return message.body


def _delivery_count(message) -> int:
    """How often the broker delivered this event before (quorum queues count NACKs with requeue)."""
    count = (message.headers or {}).get("x-delivery-count", 0)
    return count if isinstance(count, int) else 0


def _describe(message) -> dict:
    try:
        body = orjson.loads(message.body)
    except orjson.JSONDecodeError:
        body = {}
    events = [e for e in (body if isinstance(body, list) else [body]) if isinstance(e, dict)]
    if len(events) > 1:  # a pack: every event's
        return {"routingKey": message.raw_message.routing_key, "taskId": [e.get("id") for e in events],
                "position": [e.get("position") for e in events]}
    event = events[0] if events else {}
    return {"routingKey": message.raw_message.routing_key, "taskId": event.get("id"),
            "position": event.get("position")}


def _record_failure(queue: ServiceQueue, message, attempt: int, error: Exception) -> None:
    REGISTRY.inc("taskjournal_consumer_failures_total", queue=queue.name)
    log.warning("handling an internal event failed", exc_info=error,
                extra=fields(queue=queue.name, attempt=attempt, **_describe(message)))


async def _dead_letter(broker: RabbitBroker, queue: ServiceQueue, message, attempts: int, error: Exception) -> None:
    """Park the event in `<queue>.dead` (confirmed) before it is acknowledged;
    if that fails, raise: the event goes back to the service queue instead."""
    await broker.declare_queue(rabbit_queue(queue, name=queue.dead_letter_name))
    raw = message.raw_message
    headers = {**{k: v for k, v in (message.headers or {}).items() if not k.startswith("x-delivery")},
               ORIGINAL_ROUTING_KEY: raw.routing_key or "", ORIGINAL_QUEUE: queue.name, ATTEMPTS: attempts,
               LAST_ERROR: f"{type(error).__name__}: {error}"[:1000]}
    result = await broker.publish(message.body, queue.dead_letter_name, persist=True, mandatory=True,
                                  headers=headers, content_type=raw.content_type,
                                  content_encoding=raw.content_encoding, message_type=raw.type)
    if isinstance(result, aiormq.abc.DeliveredMessage):
        raise RuntimeError(f"dead-letter queue {queue.dead_letter_name} is missing") from error
    REGISTRY.inc("taskjournal_dead_letters_total", queue=queue.name)
    log.error("internal event parked in the dead-letter queue after repeated failures", exc_info=error,
              extra=fields(queue=queue.name, deadLetterQueue=queue.dead_letter_name, attempts=attempts,
                           **_describe(message)))
