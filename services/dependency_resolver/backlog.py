"""The dependency-resolver's backlog, for an autoscaler: how many messages wait
in its queue (a passive declare answers with the count of ready messages;
each holds one event or a pack of up to PACK, shared/bus/rabbit.py),
published as the gauge `taskjournal_dependency_events_backlog`."""

import asyncio
import logging

import aio_pika

from taskjournal.shared.bus.rabbit import PACK
from taskjournal.shared.metrics import REGISTRY

log = logging.getLogger("taskjournal.dependency-resolver")
EVENTS_BACKLOG = "taskjournal_dependency_events_backlog"
REGISTRY.describe(EVENTS_BACKLOG, "gauge",
                  f"messages (an internal event or a pack of up to {PACK}) waiting in the dependency-resolver's queue",
                  labels=())


async def watch(amqp_url: str, queue_name: str, interval: float) -> None:
    """Set the gauge every `interval` seconds until cancelled; a broker that
    is away leaves the last value and is asked again later."""
    while True:
        try:
            connection = await aio_pika.connect(amqp_url, client_properties={"connection_name": "taskjournal-backlog"})
            async with connection:
                channel = await connection.channel()
                while True:
                    queue = await channel.declare_queue(queue_name, passive=True)
                    REGISTRY.set(EVENTS_BACKLOG, queue.declaration_result.message_count or 0)
                    await asyncio.sleep(interval)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.debug("cannot read the queue's depth; trying again", exc_info=error)
            await asyncio.sleep(interval)
