"""scheduler, deadline part: unresolved tasks past their deadline end as
exception/deadline-exceeded (behaviour spec §3.6)."""

from taskjournal.services.resolver_loop import resolve_forever
from taskjournal.shared.domain.time import parse_ms
from taskjournal.shared.metrics import REGISTRY


async def run(journal, executor, interval: float) -> None:
    def act(task_id, now):
        if not journal.exceed_deadline(task_id, now):
            return False
        REGISTRY.inc("taskjournal_deadlines_exceeded_total")
        task = journal.task(task_id)  # just saved: from the repository's cache
        if task is not None:
            REGISTRY.observe("taskjournal_resolver_lateness_seconds",
                             (now - parse_ms(task.definition["deadline"])) / 1000, resolver="deadline-resolver")
        return True

    await resolve_forever("deadline-resolver", journal.views.past_deadline, act, executor, interval)
