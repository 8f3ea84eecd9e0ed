"""The relay against the real PostgreSQL and RabbitMQ (and SQLite with the
in-process bus): bodies, per-task order, at-least-once after a crash
between publish and position write, and one active relay per database.

Each test uses a fresh database, a task queue and route of its own, and
exclusive queues bound by that route, so parallel runs don't interfere."""

import asyncio
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import aio_pika
import orjson
import pytest

from taskjournal.services.relay import Relay
from taskjournal.shared.bus import InProcessBus
from taskjournal.shared.domain.time import now_ms
from taskjournal.shared.journal import open_journal
from taskjournal.shared.messages import EXCHANGES, INTERNAL_EXCHANGE, exchange
from tests.support import reference
from tests.support.amqp import receive
from tests.support.relay import Running, Scenario, until

TASK_EXCHANGES = [e for e in EXCHANGES if not e.startswith("task-group")]
LIFECYCLE = ["task-defined", "task-pending", "task-running", "task-completed"]


# ------------------------------------------------------------ fixtures and helpers
@pytest.fixture
def journal(postgres_url, tmp_path):
    j = open_journal(postgres_url, str(tmp_path))
    yield j
    j.close()


async def route_queue(channel, scenario, exchanges=TASK_EXCHANGES):
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    for name in exchanges:
        await queue.bind(exchange(name), f"route.{scenario.route}")
    return queue


def exchange_names(messages) -> list[str]:
    return [m.exchange.rsplit("/", 1)[1] for m in messages]


def recorded_position(journal, name="default") -> int:
    with journal.recorder.datastore.transaction(commit=False) as curs:
        curs.execute("SELECT position FROM tj_relay_position WHERE name = %s", (name,))
        row = curs.fetchone()
    return row["position"] if row else 0


# ------------------------------------------------------------ PostgreSQL + RabbitMQ
async def test_route_subscriber_gets_the_completed_message(journal, publisher, channel):
    scenario = Scenario()
    completed = await route_queue(channel, scenario, ["task-completed"])
    running = Running(Relay(journal, publisher, poll_interval=30))  # NOTIFY must wake it
    try:
        task_id = await asyncio.to_thread(scenario.run_lifecycle, journal)
        message, = await receive(completed, 1)
    finally:
        await running.stop()
    body = orjson.loads(message.body)
    status = journal.task(task_id).status()
    assert body == {"version": 1, "status": status, "runId": 0, "task": {"tags": {"test": scenario.tag}},
                    "workerGroup": "wg", "workerId": "wid"}
    assert message.routing_key == f"primary.{task_id}.0.wg.wid.tj-test.wt-{scenario.tag}.-.{task_id}._"
    assert message.headers["CC"] == [f"route.{scenario.route}"]
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    validate_against_schema("task-completed", body)


def validate_against_schema(name: str, body: dict) -> None:
    schemas = reference.require("schemas/queue/v1")
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT6

    base, resources = "https://reference.invalid", []
    for path in schemas.glob("*.json"):
        schema = json.loads(path.read_text())
        schema = {**schema, "$id": base + schema["$id"]}
        schema.pop("$schema", None)
        resources.append((schema["$id"].rstrip("#"), Resource.from_contents(schema, DRAFT6)))
    registry = Registry().with_resources(resources)
    schema = registry.contents(f"{base}/schemas/queue/v1/{name}-message.json")
    jsonschema.Draft6Validator(schema, registry=registry).validate(body)


def interleaved_lifecycles(journal, scenario, count: int) -> list[str]:
    """Tasks whose events alternate in the log: all created, all claimed in one commit, all completed."""
    task_ids = [scenario.create(journal) for _ in range(count)]
    assert sorted(scenario.claim(journal)) == sorted(task_ids)
    for task_id in task_ids:
        journal.report(task_id, 0, "completed", now_ms())
    return task_ids


async def test_messages_of_a_task_arrive_in_log_order(journal, publisher, channel):
    scenario = Scenario()
    queue = await route_queue(channel, scenario)
    # cache_size=1: interleaved tasks always miss, so states come from the repository
    running = Running(Relay(journal, publisher, cache_size=1, poll_interval=30))  # NOTIFY must wake it
    try:
        task_ids = await asyncio.to_thread(interleaved_lifecycles, journal, scenario, 3)
        got = await receive(queue, 4 * len(task_ids))
    finally:
        await running.stop()
    assert len(got) == 12
    for task_id in task_ids:
        mine = [m for m in got if orjson.loads(m.body)["status"]["taskId"] == task_id]
        assert exchange_names(mine) == LIFECYCLE


async def test_internal_events_carry_the_log_in_order(journal, publisher, channel):
    scenario = Scenario()
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(INTERNAL_EXCHANGE, "Task.*")
    running = Running(Relay(journal, publisher, internal_events=("Task.*",)))  # each needs a bound queue
    try:
        task_id = await asyncio.to_thread(scenario.run_lifecycle, journal)
        await until(lambda: running.relay.position and running.relay.position >= 5)
        got = [orjson.loads(m.body) for m in await receive(queue, 4)]
    finally:
        await running.stop()
    mine = [b for b in got if b["id"] == task_id]  # other runs may publish Task.* events too
    assert [(b["type"], b["version"]) for b in mine] == [
        ("Task.Defined", 1), ("Task.RunAdded", 2), ("Task.RunClaimed", 3), ("Task.RunResolved", 4)]
    assert [b["position"] for b in mine] == sorted(b["position"] for b in mine)
    assert mine[3]["state"] == "completed" and mine[1]["reason_created"] == "scheduled"


async def test_restart_after_a_crash_before_the_position_write(journal, publisher, channel):
    """Batches of 2 events: [Group.Defined, Task.Defined] [RunAdded, RunClaimed] [RunResolved].
    The first relay dies after publishing batch 2 but before recording it."""
    scenario = Scenario()
    queue = await route_queue(channel, scenario)
    task_id = scenario.run_lifecycle(journal)

    async def crash_on_second_batch(position):
        if position > 2:
            crashing.task.cancel()
            await asyncio.sleep(10)  # cancelled here, before the position write

    crashing = Running(Relay(journal, publisher, batch_size=2, after_publish=crash_on_second_batch))
    with pytest.raises(asyncio.CancelledError):
        await crashing.task
    assert recorded_position(journal) == 2
    first = await receive(queue, 3)
    # batches 1 and 2 were confirmed; batch 3 may have been sent too (in flight when the relay died)
    assert exchange_names(first)[:3] == ["task-defined", "task-pending", "task-running"]
    assert exchange_names(first)[3:] in ([], ["task-completed"])

    resumed = Running(Relay(journal, publisher, batch_size=2))
    try:
        await until(lambda: resumed.relay.position == 5)
        second = await receive(queue, 3)
    finally:
        await resumed.stop()
    # batch 1 (recorded) is not sent again; batch 2 is, then the rest, in order
    assert exchange_names(second) == ["task-pending", "task-running", "task-completed"]
    assert {orjson.loads(m.body)["status"]["taskId"] for m in first + second} == {task_id}
    assert recorded_position(journal) == 5


KILLED_RELAY = """
import asyncio, os, signal, sys
from taskjournal.services.relay import Relay
from taskjournal.shared.bus.rabbit import RabbitPublisher
from taskjournal.shared.journal import open_journal

async def main(database_url, data_dir, amqp_url):
    async def die(position):
        if position > 2:
            os.kill(os.getpid(), signal.SIGKILL)  # confirmed, not yet recorded
    async with RabbitPublisher(amqp_url) as publisher:
        relay = Relay(open_journal(database_url, data_dir), publisher, batch_size=2, after_publish=die)
        await relay.run(asyncio.Event())

asyncio.run(main(*sys.argv[1:]))
"""


async def test_relay_killed_with_sigkill_resumes_from_its_position(journal, publisher, channel, postgres_url,
                                                                  amqp_url, tmp_path):
    scenario = Scenario()
    queue = await route_queue(channel, scenario)
    scenario.run_lifecycle(journal)
    root = Path(__file__).resolve().parents[2]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", KILLED_RELAY, postgres_url, str(tmp_path / "killed"), amqp_url, cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)})
    assert await asyncio.wait_for(process.wait(), 60) == -signal.SIGKILL
    assert recorded_position(journal) == 2
    first = exchange_names(await receive(queue, 3))  # and batch 3, if it was in flight when the relay died
    assert first[:3] == ["task-defined", "task-pending", "task-running"] and first[3:] in ([], ["task-completed"])

    resumed = Running(Relay(journal, publisher, batch_size=2))  # the dead one's lock went with its connection
    try:
        await until(lambda: resumed.relay.position == 5)
        assert exchange_names(await receive(queue, 3)) == ["task-pending", "task-running", "task-completed"]
    finally:
        await resumed.stop()


async def test_only_one_relay_is_active_per_database(journal, publisher, channel):
    scenario = Scenario()
    queue = await route_queue(channel, scenario)
    first = Running(Relay(journal, publisher))
    await until(lambda: first.relay.position is not None)
    second = Running(Relay(journal, publisher, standby_interval=0.1))
    try:
        await asyncio.to_thread(scenario.run_lifecycle, journal)
        assert exchange_names(await receive(queue, 4)) == LIFECYCLE
        assert second.relay.position is None  # stood by: never read the log
        await first.stop()  # releases the lock: the other takes over from the recorded position
        await asyncio.to_thread(scenario.run_lifecycle, journal)
        assert exchange_names(await receive(queue, 4)) == LIFECYCLE
        assert second.relay.position == recorded_position(journal) == 10
    finally:
        await second.stop()
        if not first.task.done():
            await first.stop()


# ------------------------------------------------------------ SQLite + in-process bus (taskjournal dev)
async def test_sqlite_relay_with_the_in_process_bus(tmp_path):
    journal = open_journal(None, str(tmp_path))
    bus = InProcessBus()
    pulses, events, groups = [], [], []
    bus.subscribe_pulse(pulses.append, routing_key="route.#")
    bus.subscribe_pulse(groups.append, exchange("task-group-sealed"))
    bus.subscribe_internal(["#"], events.append)
    relay = Relay(journal, bus, poll_interval=30, internal_events=("#",))  # only a wake-up can make it look in time
    running = Running(relay)
    try:
        await until(lambda: relay.position == 0)
        scenario = Scenario()
        task_id = scenario.run_lifecycle(journal)
        journal.seal_task_group(task_id, now_ms())  # the group is named after its first task
        threading.Thread(target=relay.wake).start()  # as the journal's save hook would, from its thread
        await until(lambda: len(events) == 6, timeout=5)
    finally:
        await running.stop()
        journal.close()
    assert exchange_names(pulses) == LIFECYCLE
    assert [e["type"] for e in events] == ["TaskGroup.Defined", "Task.Defined", "Task.RunAdded",
                                           "Task.RunClaimed", "Task.RunResolved", "TaskGroup.Sealed"]
    assert all(e["id"] == task_id for e in events)
    sealed, = groups
    assert sealed.routing_key == f"primary.{task_id}.-._" and sealed.body["sealed"]
    reopened = open_journal(None, str(tmp_path))
    try:
        assert Relay(reopened, bus).load_position() == 6
    finally:
        reopened.close()


class FlakyPublisher:
    """Fails its first publish, as a broker connection lost mid-batch would."""

    def __init__(self):
        self.calls, self.delivered = 0, []

    async def send(self, messages, internal):
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("broker went away")
        self.delivered += messages
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def test_a_failed_publish_is_retried_not_skipped(tmp_path):
    journal = open_journal(None, str(tmp_path))
    publisher = FlakyPublisher()
    Scenario().run_lifecycle(journal)
    running = Running(Relay(journal, publisher))
    try:
        await until(lambda: running.relay.position == 5)
    finally:
        await running.stop()
        journal.close()
    assert publisher.calls == 2 and exchange_names(publisher.delivered) == LIFECYCLE


class HeldPublisher:
    """Sends at once; each batch's confirm waits until the test releases it,
    or fails if the test says so."""

    def __init__(self):
        self.sent: list[list] = []
        self.confirms: list[asyncio.Future] = []

    async def send(self, messages, internal):
        self.sent.append(exchange_names(messages))
        self.confirms.append(asyncio.get_running_loop().create_future())
        return self.confirms[-1]


async def test_batches_go_out_while_earlier_confirms_are_awaited_and_are_recorded_in_order(tmp_path):
    """Batches of one event: the relay sends the next batches before the
    first is confirmed (up to its in-flight limit), and records a position
    only once its batch and every batch before it are confirmed."""
    from taskjournal.services.relay.relay import IN_FLIGHT

    journal = open_journal(None, str(tmp_path))
    publisher = HeldPublisher()
    Scenario().run_lifecycle(journal)  # 5 events
    running = Running(Relay(journal, publisher, batch_size=1))
    try:
        await until(lambda: len(publisher.sent) == min(5, IN_FLIGHT + 2))  # one taken to confirm, IN_FLIGHT queued
        assert running.relay.position == 0
        publisher.confirms[1].set_result(None)  # the second confirm, before the first: nothing is recorded yet
        await asyncio.sleep(0.2)
        assert running.relay.position == 0
        publisher.confirms[0].set_result(None)
        await until(lambda: running.relay.position == 2)
        await until(lambda: len(publisher.sent) == 5)
        for confirm in publisher.confirms[2:]:
            confirm.set_result(None)
        await until(lambda: running.relay.position == 5)
    finally:
        await running.stop()
        journal.close()
    assert sum(publisher.sent, []) == LIFECYCLE


async def test_a_failed_confirm_sends_that_batch_and_the_ones_after_it_again(tmp_path):
    journal = open_journal(None, str(tmp_path))
    publisher = HeldPublisher()
    Scenario().run_lifecycle(journal)
    running = Running(Relay(journal, publisher, batch_size=1))
    try:
        await until(lambda: len(publisher.sent) >= 3)
        publisher.confirms[0].set_result(None)
        publisher.confirms[1].set_exception(ConnectionError("nacked"))  # batch 2 fails, batch 3 was sent already
        await until(lambda: len(publisher.sent) >= 6)  # from batch 2 again
        assert running.relay.position == 1
        while running.relay.position != 5:
            for confirm in publisher.confirms:
                if not confirm.done():
                    confirm.set_result(None)
            await asyncio.sleep(0.05)
    finally:
        await running.stop()
        journal.close()
    singles = [[name] for name in LIFECYCLE]  # batches 2-5 (batch 1, the group's definition, has no message)
    assert publisher.sent[:3] == [[], *singles[:2]]
    assert publisher.sent[-4:] == singles  # from the failed batch 2 again, to the end


async def test_batches_confirmed_during_a_position_write_share_the_next_one(tmp_path):
    """Position writes go one at a time; the batches confirmed meanwhile are
    recorded by one write of the newest position, not one write each."""
    journal = open_journal(None, str(tmp_path))
    written, record = [], journal.store.record_relay_position

    def slow_record(name, position):
        time.sleep(0.2)
        record(name, position)
        written.append(position)

    journal.store.record_relay_position = slow_record
    Scenario().run_lifecycle(journal)  # 5 events, batches of one
    running = Running(Relay(journal, InProcessBus(), batch_size=1))
    try:
        await until(lambda: running.relay.position == 5)
        await until(lambda: written and written[-1] == 5)
    finally:
        await running.stop()
    try:
        assert written == sorted(written) and len(written) < 5  # e.g. [1, 5]
        assert journal.store.relay_position("default") == 5
    finally:
        journal.close()
