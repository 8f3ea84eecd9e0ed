"""claim-resolver: runs whose takenUntil passed end as exception/claim-expired,
and are retried while retries are left (behaviour spec §4.4)."""

from taskjournal.services.resolver_loop import resolve_forever
from taskjournal.shared.metrics import REGISTRY


async def run(journal, executor, interval: float) -> None:
    def act(claim, now):
        if not journal.expire_claim(claim["task_id"], claim["run_id"], claim["taken_until"], now):
            return False
        REGISTRY.inc("taskjournal_claims_expired_total")
        REGISTRY.observe("taskjournal_resolver_lateness_seconds", (now - claim["taken_until"]) / 1000,
                         resolver="claim-resolver")
        return True

    await resolve_forever("claim-resolver", journal.views.expired_claims, act, executor, interval)
