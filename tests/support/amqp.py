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


class RouteSubscriber:
    """Collects (routing key, body) of the messages of one public exchange
    (e.g. "task-completed") routed by `route.<route>`, on a thread of its own."""

    def __init__(self, amqp_url: str, exchange: str, route: str):
        import threading

        self.amqp_url, self.exchange, self.route = amqp_url, exchange, route
        self.bodies: list[tuple[str, dict]] = []
        self.stop, self.ready = False, threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._consume()), daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    async def _consume(self) -> None:
        import aio_pika
        import orjson

        connection = await aio_pika.connect(self.amqp_url)
        channel = await connection.channel()
        exchange = await channel.declare_exchange(f"exchange/taskcluster-queue/v1/{self.exchange}",
                                                  aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=f"route.{self.route}")
        self.ready.set()
        async with queue.iterator() as messages:
            async for message in messages:
                async with message.process():
                    self.bodies.append((message.routing_key, orjson.loads(message.body)))
                if self.stop:
                    break
        await connection.close()
