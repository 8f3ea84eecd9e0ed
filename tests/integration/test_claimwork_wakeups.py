"""Many long polls, few queries (ADR 0021): a wake-up for one task queue
stirs only that queue's polls, and only as many of them as there may be work
for; held polls cost the database one look per queue per safety interval,
not one per poll. Real PostgreSQL; looks are counted by the Claimer."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from taskjournal.services.api_gateway.claimwork import Claimer, PendingListener, PendingSignal
from taskjournal.services.bootstrap import Wakeups
from taskjournal.shared.journal import open_journal
from tests.support.journal import create_task

POLLS = 8
QUEUES = ("wake/a", "wake/b", "wake/c")
LONG = 600.0  # neither the wait nor the safety re-check ends during a test unless it sets them


@pytest.fixture
async def gateway(postgres_url, tmp_path):
    """A Journal whose commits wake its Claimer, as in one gateway process."""
    wakeups = Wakeups(asyncio.get_running_loop())
    journal = open_journal(postgres_url, str(tmp_path / "gw"), listener=wakeups)
    executor = ThreadPoolExecutor(8)
    yield journal, executor, wakeups.pending_work
    executor.shutdown(wait=True, cancel_futures=True)
    journal.close()


def claimer_of(gateway, safety_s: float = LONG) -> Claimer:
    journal, executor, signal = gateway
    return Claimer(journal, executor, signal, wait_s=LONG, claim_timeout_ms=60_000, safety_s=safety_s)


def hold(claimer: Claimer, queue: str, polls: int, barred=lambda now: False) -> list[asyncio.Task]:
    return [asyncio.create_task(claimer.claim(queue, "g", f"{queue}-{i}", 1, barred=barred))
            for i in range(polls)]


async def until(condition, patience_s: float = 60.0) -> None:
    """Wait for a condition (the bound only turns a lost wake-up into a failure, not a hang)."""
    async with asyncio.timeout(patience_s):
        while not condition():
            await asyncio.sleep(0.01)


def asleep(signal: PendingSignal, queue: str) -> int:
    waiters = signal.queues.get(queue)
    return len(waiters.sleepers) if waiters else 0


async def all_asleep(signal: PendingSignal, polls: dict[str, int]) -> None:
    await until(lambda: all(asleep(signal, queue) == n for queue, n in polls.items()))


async def stop(polls: list[asyncio.Task]) -> None:
    for poll in polls:
        poll.cancel()
    await asyncio.gather(*polls, return_exceptions=True)


async def created(journal, executor, queue: str) -> str:
    task = await asyncio.get_running_loop().run_in_executor(executor, create_task, journal, queue)
    return task.task_id


async def test_polls_after_an_empty_look_sleep_without_querying(gateway):
    claimer, signal = claimer_of(gateway), gateway[2]
    polls = [poll for queue in QUEUES for poll in hold(claimer, queue, POLLS)]
    await all_asleep(signal, {queue: POLLS for queue in QUEUES})
    assert claimer.looks == {queue: 1 for queue in QUEUES}
    await stop(polls)


async def test_a_task_wakes_one_poll_of_its_queue_and_no_other_queues_polls(gateway):
    journal, executor, signal = gateway
    claimer = claimer_of(gateway)
    polls = {queue: hold(claimer, queue, POLLS) for queue in QUEUES}
    await all_asleep(signal, {queue: POLLS for queue in QUEUES})
    before = dict(claimer.looks)

    task_id = await created(journal, executor, "wake/a")
    done, _ = await asyncio.wait_for(asyncio.wait(polls["wake/a"], return_when=asyncio.FIRST_COMPLETED), 60)
    assert [[t.task_id for t in poll.result()] for poll in done] == [[task_id]]
    # the poll that got as much as it asked for woke one more, which found nothing and went back to sleep
    await all_asleep(signal, {"wake/a": POLLS - 1, "wake/b": POLLS, "wake/c": POLLS})
    assert claimer.looks["wake/a"] - before["wake/a"] == 2
    assert (claimer.looks["wake/b"], claimer.looks["wake/c"]) == (before["wake/b"], before["wake/c"])
    assert sum(poll.done() for queue in QUEUES for poll in polls[queue]) == 1
    await stop([poll for queue in QUEUES for poll in polls[queue]])


async def test_a_task_committed_by_another_process_goes_to_exactly_one_of_many_polls(gateway, postgres_url, tmp_path):
    journal, executor, signal = gateway
    claimer = claimer_of(gateway)
    listening = asyncio.create_task(PendingListener(journal.store, signal).run())
    other = open_journal(postgres_url, str(tmp_path / "other"))  # another process: only NOTIFY tells this one
    try:
        polls = hold(claimer, "wake/a", POLLS)
        await all_asleep(signal, {"wake/a": POLLS})
        before = claimer.looks["wake/a"]
        task_id = await created(other, executor, "wake/a")
        done, _ = await asyncio.wait_for(asyncio.wait(polls, return_when=asyncio.FIRST_COMPLETED), 60)
        await all_asleep(signal, {"wake/a": POLLS - 1})
        assert [[t.task_id for t in poll.result()] for poll in done] == [[task_id]]
        assert sum(poll.done() for poll in polls) == 1
        assert claimer.looks["wake/a"] - before <= 3  # not one per poll (listener start, notify, baton)
        await stop(polls)
    finally:
        listening.cancel()
        other.close()


async def test_a_burst_of_tasks_drains_through_the_chain_of_polls(gateway):
    journal, executor, signal = gateway
    claimer = claimer_of(gateway)
    polls = hold(claimer, "wake/a", POLLS)
    await all_asleep(signal, {"wake/a": POLLS})
    task_ids = set()
    for _ in range(5):
        task_ids.add(await created(journal, executor, "wake/a"))
    await until(lambda: sum(poll.done() for poll in polls) == 5)
    got = [t.task_id for poll in polls if poll.done() for t in poll.result()]
    assert sorted(got) == sorted(task_ids)
    await stop(polls)


async def test_held_polls_cost_one_look_per_queue_per_safety_interval(gateway):
    safety_s = 0.05
    claimer, signal = claimer_of(gateway, safety_s), gateway[2]
    loop = asyncio.get_running_loop()
    polls = [poll for queue in QUEUES for poll in hold(claimer, queue, POLLS)]
    await all_asleep(signal, {queue: POLLS for queue in QUEUES})
    started, before = loop.time(), dict(claimer.looks)
    await until(lambda: claimer.looks["wake/a"] - before["wake/a"] >= 10)
    window = loop.time() - started
    for queue in QUEUES:  # looks of one queue are at least safety_s apart, whatever the number of polls
        assert claimer.looks[queue] - before[queue] <= window / safety_s + 1
    await stop(polls)


async def test_a_wake_up_meant_for_a_poll_whose_client_left_passes_on(gateway):
    claimer, signal = claimer_of(gateway), gateway[2]
    first = hold(claimer, "wake/a", 1)
    await all_asleep(signal, {"wake/a": 1})
    rest = hold(claimer, "wake/a", 2)
    await all_asleep(signal, {"wake/a": 3})
    before = claimer.looks["wake/a"]
    signal.notify(["wake/a"])  # wakes `first` (asleep longest)...
    first[0].cancel()  # ...whose client leaves before it looks: the next one looks instead
    await until(lambda: claimer.looks["wake/a"] == before + 1 and asleep(signal, "wake/a") == 2)
    await stop(first + rest)


async def test_a_wake_up_meant_for_a_poll_quarantined_meanwhile_passes_on(gateway):
    journal, executor, signal = gateway
    claimer, quarantined = claimer_of(gateway), [False]
    first = hold(claimer, "wake/a", 1, barred=lambda now: quarantined[0])
    await all_asleep(signal, {"wake/a": 1})
    rest = hold(claimer, "wake/a", 2)
    await all_asleep(signal, {"wake/a": 3})
    quarantined[0] = True
    task_id = await created(journal, executor, "wake/a")  # wakes `first`, which may not take it
    done, _ = await asyncio.wait_for(asyncio.wait(rest, return_when=asyncio.FIRST_COMPLETED), 60)
    assert [[t.task_id for t in poll.result()] for poll in done] == [[task_id]]
    assert not first[0].done()  # it still waits, as upstream's quarantined workers do
    await stop(first + rest)


async def test_a_look_that_only_met_undeliverable_tasks_looks_again(gateway):
    journal, executor, signal = gateway
    claimer = claimer_of(gateway)
    bad = await created(journal, executor, "wake/a")  # older: leased first
    good = await created(journal, executor, "wake/a")
    poll = asyncio.create_task(claimer.claim("wake/a", "g", "w", 1, deliverable=lambda task: task.task_id != bad))
    claimed = await asyncio.wait_for(poll, 60)  # not asleep with a task pending
    assert [task.task_id for task in claimed] == [good]


async def test_a_full_lease_wakes_the_next_poll_before_its_claims_commit(gateway, postgres_url, tmp_path):
    """A burst drains through overlapping looks: the poll whose lease took as
    many tasks as it asked for wakes the next one at once, not after loading,
    claiming and committing them."""
    journal, executor, signal = gateway
    claimer = claimer_of(gateway)
    first_waiting = threading.Event()
    second_looking = threading.Event()
    overlapped = []

    def deliverable(task) -> bool:  # on the executor: the first poll holds its claim until the second looks
        if not first_waiting.is_set():
            first_waiting.set()
            overlapped.append(second_looking.wait(10))
        else:
            second_looking.set()
        return True

    polls = [asyncio.create_task(claimer.claim("wake/a", "g", f"w{i}", 1, deliverable)) for i in range(2)]
    await all_asleep(signal, {"wake/a": 2})
    other = open_journal(postgres_url, str(tmp_path / "other"))  # commits no wake-up here: one is sent below
    try:
        task_ids = {(await created(other, executor, "wake/a")) for _ in range(2)}
    finally:
        other.close()
    signal.notify(["wake/a"])  # one wake-up for both tasks
    claimed = await asyncio.wait_for(asyncio.gather(*polls), 60)
    assert overlapped == [True]  # without overlapping looks the first poll waits in vain
    assert sorted(t.task_id for poll in claimed for t in poll) == sorted(task_ids)


async def test_a_poll_that_slept_behind_a_full_look_is_woken_when_it_ends(gateway, postgres_url, tmp_path):
    """The wake-up a full lease sends finds nobody asleep yet; a poll arriving
    while that look still claims goes to sleep (a look is in flight). The
    look, ending with a full batch, must wake it, or work waits for the
    safety re-check while a worker sleeps."""
    journal, executor, signal = gateway
    claimer = claimer_of(gateway)  # wait and safety re-check far beyond the test
    other = open_journal(postgres_url, str(tmp_path / "other"))  # commits no wake-up here
    try:
        task_ids = {(await created(other, executor, "wake/b")) for _ in range(2)}
    finally:
        other.close()
    holding, release = threading.Event(), threading.Event()

    def deliverable(task) -> bool:  # on the executor: the first poll holds its claim until released
        if not holding.is_set():
            holding.set()
            release.wait(10)
        return True

    first = asyncio.create_task(claimer.claim("wake/b", "g", "w0", 1, deliverable))
    await until(holding.is_set)  # its lease came back full and its wake-up found no sleeper
    second = asyncio.create_task(claimer.claim("wake/b", "g", "w1", 1, deliverable))
    await all_asleep(signal, {"wake/b": 1})  # it found the look in flight and sleeps
    release.set()
    claimed = await asyncio.wait_for(asyncio.gather(first, second), 60)
    assert sorted(t.task_id for poll in claimed for t in poll) == sorted(task_ids)
