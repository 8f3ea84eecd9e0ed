"""scheduler, deadline part: unresolved tasks past their deadline end as
exception/deadline-exceeded (behaviour spec §3.6)."""

from taskjournal.services.resolver_loop import resolve_forever
from taskjournal.shared.actor import acting, service

ACTOR = service("scheduler")


async def run(journal, executor, interval: float) -> None:
    def act(task_id, now):
        with acting(ACTOR):
            return journal.exceed_deadline(task_id, now)

    await resolve_forever("deadline-resolver", journal.views.past_deadline, act, executor, interval)
