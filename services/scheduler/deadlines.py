"""scheduler, deadline part: unresolved tasks past their deadline end as
exception/deadline-exceeded (behaviour spec §3.6). Replicas lease disjoint
batches of them (ADR 0017)."""

from taskjournal.services.resolver_loop import resolve_forever
from taskjournal.shared.actor import acting, service
from taskjournal.shared.domain.time import parse_ms
from taskjournal.shared.metrics import REGISTRY

ACTOR = service("scheduler")


def exceed(journal):
    def act(task_id: str, now: int) -> bool:
        with acting(ACTOR):
            if not journal.exceed_deadline(task_id, now):
                return False
        REGISTRY.inc("taskjournal_deadlines_exceeded_total")
        task = journal.task(task_id)  # just saved: from the repository's cache
        if task is not None:
            REGISTRY.observe("taskjournal_resolver_lateness_seconds",
                             (now - parse_ms(task.definition["deadline"])) / 1000, resolver="deadline-resolver")
        return True
    return act


async def run(journal, executor, interval: float) -> None:
    await resolve_forever("deadline-resolver", journal.views.lease_past_deadline, exceed(journal), executor, interval)
