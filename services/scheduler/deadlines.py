"""scheduler, deadline part: unresolved tasks past their deadline end as
exception/deadline-exceeded (behaviour spec §3.6). Replicas lease disjoint
batches of them (ADR 0017)."""

from taskjournal.services.resolver_loop import resolve_forever
from taskjournal.shared.actor import acting, service

ACTOR = service("scheduler")


def exceed(journal):
    def act(task_id: str, now: int) -> bool:
        with acting(ACTOR):
            return journal.exceed_deadline(task_id, now)
    return act


async def run(journal, executor, interval: float) -> None:
    await resolve_forever("deadline-resolver", journal.views.lease_past_deadline, exceed(journal), executor, interval)
