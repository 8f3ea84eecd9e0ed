"""RabbitMQ for the tests: the broker's URL, reading queues, cleaning up."""

import asyncio
import os
import time

AMQP_URL = os.environ.get("TASKJOURNAL_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


async def probe(url: str = AMQP_URL) -> None:
    """Connect once; raises when the broker is unreachable."""
    import aio_pika

    connection = await aio_pika.connect(url, timeout=3)
    await connection.close()


def delete_service_queues(instance: str) -> None:
    """Delete the broker queue the services of one test database declared."""
    import aio_pika

    async def delete():
        connection = await aio_pika.connect(AMQP_URL, timeout=3)
        async with connection:
            channel = await connection.channel()
            for name in (f"taskjournal.{instance}.dependency-resolver",
                         f"taskjournal.{instance}.dependency-resolver.dead"):
                await channel.queue_delete(name)  # a missing queue is no error (RabbitMQ 3.10)

    try:
        asyncio.run(delete())
    except Exception:  # no broker, or no such queue: nothing to clean
        pass


async def receive(queue, count: int, timeout: float = 15.0, settle: float = 0.5) -> list:
    """`count` messages, then a short wait proving no more arrive."""
    got, deadline, settled = [], time.monotonic() + timeout, time.monotonic() + settle
    while time.monotonic() < deadline:
        message = await queue.get(no_ack=True, fail=False)
        if message is None:
            if len(got) >= count and time.monotonic() > settled:
                break
            await asyncio.sleep(0.02)
            continue
        got.append(message)
        settled = time.monotonic() + settle
    return got
