"""Operators' side of a service's dead-letter queue (`<queue>.dead`, filled
by `shared.bus.consumer` with events a handler kept failing on): list the
parked events, and put them back on the service queue once the cause is fixed."""

import aio_pika
import aiormq

from .consumer import ATTEMPTS, LAST_ERROR, ORIGINAL_QUEUE, ORIGINAL_ROUTING_KEY
from .queues import ServiceQueue

OURS = (ORIGINAL_ROUTING_KEY, ORIGINAL_QUEUE, ATTEMPTS, LAST_ERROR)


async def list_dead_letters(url: str, queue: ServiceQueue, limit: int = 100) -> list[dict]:
    """Up to `limit` parked events, oldest first; they stay parked."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        dead = await channel.declare_queue(queue.dead_letter_name, passive=True)
        letters: list[dict] = []
        while len(letters) < limit:
            message = await dead.get(no_ack=False, fail=False)
            if message is None:
                break
            headers = message.headers or {}
            letters.append({"routingKey": headers.get(ORIGINAL_ROUTING_KEY), "attempts": headers.get(ATTEMPTS),
                            "error": headers.get(LAST_ERROR), "body": message.body.decode("utf-8", "replace")})
        # closing the channel unacknowledged returns every one of them to the dead-letter queue
    return letters


async def requeue_dead_letters(url: str, queue: ServiceQueue) -> int:
    """Move the events parked now back to the service queue (directly, so no
    other service gets a copy); each is acknowledged only once the broker
    confirmed the copy. The number moved."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        dead = await channel.declare_queue(queue.dead_letter_name, passive=True)
        await channel.declare_queue(queue.name, passive=True)
        moved, parked = 0, dead.declaration_result.message_count or 0
        while moved < parked:  # only those parked now: one failing again must not loop
            message = await dead.get(no_ack=False, fail=False)
            if message is None:
                break
            again = aio_pika.Message(message.body, headers={k: v for k, v in (message.headers or {}).items()
                                                            if k not in OURS},
                                     content_type=message.content_type, content_encoding=message.content_encoding,
                                     type=message.type, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            result = await channel.default_exchange.publish(again, queue.name, mandatory=True)
            if isinstance(result, aiormq.abc.DeliveredMessage):
                await message.nack(requeue=True)
                raise RuntimeError(f"queue {queue.name} refused the event")
            await message.ack()
            moved += 1
    return moved
