"""claim-resolver: runs whose takenUntil passed end as exception/claim-expired,
and are retried while retries are left (behaviour spec §4.4). Replicas lease
disjoint batches of expired claims (ADR 0017)."""

from taskjournal.services.resolver_loop import resolve_forever
from taskjournal.shared.actor import acting, service
from taskjournal.shared.metrics import REGISTRY

ACTOR = service("claim-resolver")

CLAIMS_BACKLOG = "taskjournal_claims_expired_backlog"
REGISTRY.describe(CLAIMS_BACKLOG, "gauge", "expired claims not resolved yet (after this process's last pass)")


def expire(journal):
    """What the resolver does with one leased claim: True when it expired it."""
    def act(claim: dict, now: int) -> bool:
        with acting(ACTOR):
            return journal.expire_claim(claim["task_id"], claim["run_id"], claim["taken_until"], now)
    return act


def measure_backlog(journal):
    def measure(now: int) -> None:
        REGISTRY.set(CLAIMS_BACKLOG, journal.views.expired_claims_backlog(now))
    return measure


async def run(journal, executor, interval: float) -> None:
    await resolve_forever("claim-resolver", journal.views.lease_expired_claims, expire(journal), executor, interval,
                          after_pass=measure_backlog(journal))
