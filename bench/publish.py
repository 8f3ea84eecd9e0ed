#!/usr/bin/env python3
"""CPU per message the relay's publisher (shared/bus/rabbit.py) spends
publishing with confirms to the local RabbitMQ: 20 batches of 250 Pulse
messages and 250 internal events. Process time, so other load on the machine
matters little; compare commits with interleaved runs.

  .venv/bin/python bench/publish.py
"""
import asyncio, sys, time
from taskjournal.shared.bus.rabbit import RabbitPublisher
from taskjournal.shared.messages import PulseMessage, InternalEvent, exchange
from taskjournal.shared.bus.queues import service_queue

async def main(n_batches=20, size=250):
    q = service_queue("perfpub", "dependency-resolver", ("Task.RunResolved",))
    async with RabbitPublisher("amqp://guest:guest@127.0.0.1:5672/", instance="perfpub", queues=[q]) as pub:
        body = {"status": {"taskId": "x" * 22, "runs": [{"runId": 0, "state": "completed"}]}, "runId": 0, "version": 1}
        msgs = [PulseMessage(exchange("task-completed"), "primary.x.0.a.b", body, ["route.a"]) for _ in range(size)]
        internal = [InternalEvent("Task.RunResolved", {"id": "x", "position": i}) for i in range(size)]
        await pub.publish(msgs[:10], internal[:10])
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(n_batches):
            await pub.publish(msgs, internal)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        n = n_batches * size * 2
        print(f"{n} messages: {cpu * 1e6 / n:.1f} us CPU/message, {n / wall:.0f} messages/s wall")
        ch = await pub.connection.channel()
        await ch.queue_delete(q.name); await ch.queue_delete(q.dead_letter_name)

asyncio.run(main())
