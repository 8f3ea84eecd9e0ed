"""taskQueueCounts' pendingTasks is exact: at quiescence, after any mix of
create, claim, cancel, completion, exceptions (retried or not), reruns,
priority changes, claim expiry and deadlines, it equals the number of
tasks claimWork can actually claim (issue 10), on both stores."""

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskjournal.shared.domain.errors import DomainError
from taskjournal.shared.domain.priority import LEVELS
from tests.support.journal import create_task

NOW = 1_900_000_000_000
MINUTE = 60_000

steps = st.lists(st.one_of(
    st.tuples(st.just("create"), st.sampled_from(LEVELS), st.sampled_from([3 * MINUTE, 60 * MINUTE, 60 * MINUTE])),
    st.tuples(st.just("create"), st.sampled_from(LEVELS), st.sampled_from([3 * MINUTE, 60 * MINUTE, 60 * MINUTE])),
    st.tuples(st.just("claim"), st.integers(1, 4)),
    st.tuples(st.sampled_from(["cancel", "complete", "fail", "rerun"]), st.integers(0, 30)),
    st.tuples(st.just("exception"), st.integers(0, 30), st.sampled_from(["worker-shutdown", "malformed-payload"])),
    st.tuples(st.just("priority"), st.integers(0, 30), st.sampled_from(LEVELS)),
    st.tuples(st.just("wait"), st.sampled_from([MINUTE, 5 * MINUTE])),
), min_size=5, max_size=40)


def quiesce(journal, now: int) -> None:
    """What the claim and deadline resolvers would do by `now`."""
    while True:
        claims = journal.views.expired_claims(now)
        late = journal.views.past_deadline(now)
        for claim in claims:
            journal.expire_claim(claim["task_id"], claim["run_id"], claim["taken_until"], now)
        for task_id in late:
            journal.exceed_deadline(task_id, now)
        if not claims and not late:
            return


def apply(journal, queue: str, step: tuple, task_ids: list, now: int) -> int:
    kind = step[0]
    pick = (lambda: task_ids[step[1] % len(task_ids)]) if task_ids else None
    try:
        if kind == "create":
            task_ids.append(create_task(journal, queue, now, priority=step[1], retries=1,
                                        deadline=now + step[2]).task_id)
        elif kind == "claim":
            journal.claim_work(queue, "wg", "w", step[1], now, now + 2 * MINUTE)
        elif kind == "wait":
            return now + step[1]
        elif pick is None:
            return now
        elif kind == "priority":
            journal.change_task_priority(pick(), step[2], now)
        elif kind == "rerun":
            journal.rerun_task(pick(), now)
        elif kind == "cancel":
            journal.cancel_task(pick(), now)
        else:
            task = journal.task(pick())
            if task.last_run is not None:
                run_id = task.last_run["runId"]
                if kind == "exception":
                    journal.report_exception(task.task_id, run_id, step[2], now)
                else:
                    journal.report(task.task_id, run_id, "completed" if kind == "complete" else "failed", now)
    except DomainError:
        pass  # a refusal is a legal outcome
    return now + 1000


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
def test_pending_count_is_what_claim_work_can_claim(journal, steps):
    queue = f"counts/w{uuid.uuid4().hex[:8]}"
    task_ids: list[str] = []
    now = NOW
    for step in steps:
        now = apply(journal, queue, step, task_ids, now)
    now += 10_000  # past every lease
    quiesce(journal, now)
    pending = journal.views.pending_count(queue, now)
    claimable = journal.claim_work(queue, "wg", "counter", 1000, now, now + 2 * MINUTE)
    assert pending == len(claimable)
    assert journal.views.pending_count(queue, now) == 0
