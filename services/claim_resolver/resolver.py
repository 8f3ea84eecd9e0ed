"""claim-resolver: runs whose takenUntil passed end as exception/claim-expired,
and are retried while retries are left (behaviour spec §4.4)."""

from taskjournal.services.resolver_loop import resolve_forever
from taskjournal.shared.actor import acting, service

ACTOR = service("claim-resolver")


async def run(journal, executor, interval: float) -> None:
    def act(claim, now):
        with acting(ACTOR):
            return journal.expire_claim(claim["task_id"], claim["run_id"], claim["taken_until"], now)

    await resolve_forever("claim-resolver", journal.views.expired_claims, act, executor, interval)
