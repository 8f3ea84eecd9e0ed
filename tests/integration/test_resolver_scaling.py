"""Claim-resolver replicas divide a backlog instead of racing for it (ADR
0017): three resolver loops over one PostgreSQL database lease disjoint
batches, together cover every expired claim, each takes part, and the log
holds exactly one claim-expired resolution per run."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from taskjournal.services.claim_resolver.resolver import expire
from taskjournal.services.resolver_loop import resolve_forever
from taskjournal.services.scheduler.deadlines import exceed
from taskjournal.shared.domain.time import now_ms
from taskjournal.shared.journal import open_journal
from tests.support.journal import create_task

pytestmark = pytest.mark.postgres
QUEUE = "scaling/claims"
CLAIMS = 120
REPLICAS = 3
BATCH = 10  # small batches: every replica gets some even on a loaded machine


class Replica:
    """One resolver instance: its own Journal (connections) and executor; it
    records what it leased and what it resolved."""

    def __init__(self, url: str, tmp_path, lease_name: str, act_of):
        self.journal = open_journal(url, str(tmp_path))
        self.executor = ThreadPoolExecutor(2)
        self.leased: list[str] = []
        self.resolved: list[str] = []
        lease = getattr(self.journal.views, lease_name)
        act = act_of(self.journal)

        def lease_due(now: int, limit: int) -> list:
            items = lease(now, limit)
            self.leased += [self.key(item) for item in items]
            return items

        def act_on(item, now: int) -> bool:
            changed = act(item, now)
            if changed:
                self.resolved.append(self.key(item))
            return changed

        self.lease_due, self.act = lease_due, act_on

    @staticmethod
    def key(item) -> str:
        return item["task_id"] if isinstance(item, dict) else item

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.journal.close()


async def run_until_done(replicas: list[Replica], name: str, backlog, timeout: float = 60.0) -> None:
    loops = [asyncio.ensure_future(resolve_forever(name, r.lease_due, r.act, r.executor, 0.05, batch=BATCH))
             for r in replicas]
    give_up = time.monotonic() + timeout
    try:
        while backlog() and time.monotonic() < give_up:
            await asyncio.sleep(0.05)
    finally:
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)


def resolutions(journal, reason: str) -> dict[str, int]:
    """{taskId: how many RunResolved events with `reason` the log holds}."""
    counts: dict[str, int] = {}
    position = 0
    while events := journal.events_after(position, 1000):
        for position, event in events:
            if type(event).__name__ == "RunResolved" and event.reason == reason:
                task_id = journal.repository.get(event.originator_id).task_id
                counts[task_id] = counts.get(task_id, 0) + 1
    return counts


def check_divided(replicas: list[Replica], expected: set[str]) -> None:
    leased = [set(r.leased) for r in replicas]
    for i, mine in enumerate(leased):
        assert len(mine) == len(replicas[i].leased), "a replica leased the same item twice"
        for theirs in leased[i + 1:]:
            assert not mine & theirs, "two replicas leased the same item"
    assert set().union(*leased) == expected
    resolved = [r.resolved for r in replicas]
    assert sorted(sum(resolved, [])) == sorted(expected)  # each resolved once, by one replica
    assert all(resolved), f"a replica took no part: {[len(r) for r in resolved]}"


async def test_claim_resolver_replicas_divide_the_backlog(postgres_url, tmp_path):
    replicas = [Replica(postgres_url, tmp_path, "lease_expired_claims", expire) for _ in range(REPLICAS)]
    journal = replicas[0].journal
    try:
        now = now_ms()
        ids = {create_task(journal, QUEUE, now, retries=0).task_id for _ in range(CLAIMS)}
        claimed = journal.claim_work(QUEUE, "g", "w", CLAIMS, now, now + 300)
        assert {task.task_id for task in claimed} == ids
        await asyncio.sleep(0.4)  # every claim has expired

        await run_until_done(replicas, "claim-resolver", lambda: journal.views.expired_claims_backlog(now_ms()))

        check_divided(replicas, ids)
        assert resolutions(journal, "claim-expired") == {task_id: 1 for task_id in ids}
    finally:
        for replica in replicas:
            replica.close()


async def test_deadline_resolver_replicas_divide_the_backlog(postgres_url, tmp_path):
    replicas = [Replica(postgres_url, tmp_path, "lease_past_deadline", exceed) for _ in range(REPLICAS)]
    journal = replicas[0].journal
    try:
        now = now_ms()
        ids = {create_task(journal, "scaling/deadlines", now, deadline=now + 300).task_id for _ in range(CLAIMS)}
        await asyncio.sleep(0.4)  # every deadline has passed

        await run_until_done(replicas, "deadline-resolver", lambda: journal.views.past_deadline(now_ms(), 1))

        check_divided(replicas, ids)
        assert resolutions(journal, "deadline-exceeded") == {task_id: 1 for task_id in ids}
    finally:
        for replica in replicas:
            replica.close()
