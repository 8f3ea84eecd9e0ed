"""Who is looking, and what they may see: the same scope expressions as the
Queue API's read endpoints, rendered with the page's parameters. Without
credentials a person has the anonymous scopes (TASKJOURNAL_ANONYMOUS_SCOPES);
a bewit in the page's URL lends its client's scopes to that page."""

from dataclasses import dataclass
from typing import Any

from taskjournal.shared.auth import scopes as scope_rules
from taskjournal.shared.auth.hawk import AuthResult

# The read endpoints' scopes (services/api_gateway/endpoints.py), by what a page shows.
GROUP = "queue:list-task-group:<taskGroupId>"
TASK = {"AllOf": ["queue:get-task:<taskId>", "queue:status:<taskId>"]}
ARTIFACTS = "queue:list-artifacts:<taskId>:<runId>"
ARTIFACT = "queue:get-artifact:<name>"
PENDING = "queue:pending-count:<taskQueueId>"
CLAIMED = "queue:claimed-count:<taskQueueId>"
WORKERS = "queue:list-workers:<provisionerId>/<workerType>"
TASK_QUEUE = "queue:get-task-queue:<taskQueueId>"
TASK_QUEUES = "queue:list-task-queues"
# A task's history names the clients that changed it: its own scope, like our API's other reads.
HISTORY = "journal:task-history:<taskId>"


@dataclass(frozen=True)
class Refusal:
    """What a page (or a part of it) needs that the viewer lacks."""

    needed: Any  # the unsatisfied part of the scope expression
    client_id: str | None

    @property
    def scopes(self) -> list[str]:
        return sorted(_leaves(self.needed))


@dataclass(frozen=True)
class Viewer:
    auth: AuthResult

    @property
    def failed(self) -> bool:
        return self.auth.status == "auth-failed"

    @property
    def client_id(self) -> str | None:
        return self.auth.client_id if self.auth.status == "auth-success" else None

    def refusal(self, expression: Any, **params: Any) -> Refusal | None:
        """None when the viewer may see it, else what is missing."""
        rendered = scope_rules.render(expression, params)
        if not self.failed and scope_rules.satisfies(self.auth.scopes, rendered):
            return None
        missing = rendered if self.failed else scope_rules.unsatisfied(self.auth.scopes, rendered)
        return Refusal(missing, self.client_id)

    def may(self, expression: Any, **params: Any) -> bool:
        return self.refusal(expression, **params) is None


def _leaves(expression: Any) -> set[str]:
    if expression is None:
        return set()
    if isinstance(expression, str):
        return {expression}
    (items,) = expression.values()
    return set().union(*(_leaves(item) for item in items))
