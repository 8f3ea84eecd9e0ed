"""Driving the relay in a test: a task queue and route of its own, a relay
running as a task, and polling with a deadline."""

import asyncio
import time
import uuid

from taskjournal.services.relay import Relay
from taskjournal.shared.domain.definition import normalize
from taskjournal.shared.domain.ids import task_id_of
from taskjournal.shared.domain.time import format_ms, now_ms

HOUR = 3600 * 1000


class Scenario:
    """A task queue and a route no other test uses."""

    def __init__(self):
        self.tag = uuid.uuid4().hex[:12]
        self.queue_id = f"tj-test/wt-{self.tag}"
        self.route = f"index.relay-test.{self.tag}"

    def create(self, journal, task_id=None):
        task_id = task_id or task_id_of(uuid.uuid4())
        now = now_ms()
        body = {"taskQueueId": self.queue_id, "created": format_ms(now), "deadline": format_ms(now + HOUR),
                "routes": [self.route], "tags": {"test": self.tag}, "payload": {},
                "metadata": {"name": "t", "description": "d", "owner": "o@example.com",
                             "source": "https://example.com"}}
        journal.create_task(task_id, normalize(task_id, body, now), now)
        return task_id

    def claim(self, journal):
        now = now_ms()
        return [t.task_id for t in journal.claim_work(self.queue_id, "wg", "wid", 10, now, now + 20 * 60 * 1000)]

    def run_lifecycle(self, journal) -> str:
        task_id = self.create(journal)
        assert self.claim(journal) == [task_id]
        journal.report(task_id, 0, "completed", now_ms())
        return task_id


class Running:
    """A relay running as a task until `stop()`."""

    def __init__(self, relay: Relay):
        self.relay, self.stop_event = relay, asyncio.Event()
        self.task = asyncio.ensure_future(relay.run(self.stop_event))

    async def stop(self):
        self.stop_event.set()
        await asyncio.wait_for(self.task, 10)


async def until(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)
