"""A claimWork that dies after leasing pending entries (a gateway killed
mid-call) holds them back for at most a couple of seconds, not for the
length of a claim: other workers then claim them."""

from taskjournal.shared.domain.time import now_ms
from tests.support.journal import create_task

QUEUE = "lease/dead-claimer"


def _create_pending(journal, now: int) -> str:
    return create_task(journal, QUEUE, now).task_id


def test_entries_leased_by_a_claimer_that_died_are_claimable_within_two_seconds(journal):
    now = now_ms()
    task_ids = {_create_pending(journal, now) for _ in range(3)}
    leased = journal.views.lease_pending(QUEUE, 10, now)  # ...and the process leasing them dies here
    assert {task_id for task_id, _ in leased} == task_ids
    assert journal.claim_work(QUEUE, "g", "other", 10, now + 100, now + 60_000) == []  # the lease still holds

    later = now + 2_001
    claimed = journal.claim_work(QUEUE, "g", "other", 10, later, later + 60_000)
    assert {task.task_id for task in claimed} == task_ids
