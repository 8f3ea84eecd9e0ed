"""Helpers for tests that read RabbitMQ queues."""

import asyncio
import time


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
