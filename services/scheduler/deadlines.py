"""scheduler, deadline part: unresolved tasks past their deadline end as
exception/deadline-exceeded (behaviour spec §3.6). Replicas lease disjoint
batches of them (ADR 0017)."""

from taskjournal.services.resolver_loop import resolve_forever


def exceed(journal):
    def act(task_id: str, now: int) -> bool:
        return journal.exceed_deadline(task_id, now)
    return act


async def run(journal, executor, interval: float) -> None:
    await resolve_forever("deadline-resolver", journal.views.lease_past_deadline, exceed(journal), executor, interval)
