"""The reference of our own API, served at /api/journal/v1/references/api.json
in the format of upstream's api.json (schema api-reference-v0), generated from
the endpoint table so the two cannot drift (a test checks it against the
router and the reference's own schema)."""

from .context import Context
from .routing import Endpoint

SCHEMAS = "/schemas/journal/v1/"
# name -> (category, title, output schema of ours or None, description)
DOCS: dict[str, tuple[str, str, str | None, str]] = {
    "queuePosition": ("Queue", "Queue Position", None,
                      "Where a pending task stands in claimWork's order for its task queue: `pendingAhead` "
                      "runs are claimed before it and `position` is `pendingAhead + 1`. A task that is not "
                      "pending (or is past its deadline) has both null."),
    "waitTimes": ("Queue", "Claim Wait Times", None,
                  "Milliseconds from pending to claimed for the task queue's claims of the last hour "
                  "(`window`): nearest-rank p50, p95 and p99, null when there were none."),
    "taskHistory": ("History", "Task History", "history-response.json#",
                    "Every event of the task and of its artifacts, in log order: its position in the log, "
                    "when it was recorded, the event, the run, the reason, what changed, and the actor who "
                    "caused it (a client with the request id, and the issuer of temporary credentials; a "
                    "service of the queue; or `unknown` for events recorded before actors were)."),
    "taskStatusAsOf": ("History", "Task Status As Of", None,
                       "The task's status as `status` answered it at the date-time `asOf` (the Queue's "
                       "task-status-response schema): the task's "
                       "events recorded up to then, replayed. 404 when the task did not exist yet."),
    "taskGroupHistory": ("History", "Task Group History", "history-response.json#",
                         "The events of the task group, of its tasks and of their artifacts, in log order, "
                         "in pages: call again with the `continuationToken` given until there is none. "
                         "`limit` (at most 1000) caps a page."),
    "log": ("History", "Event Log", "log-response.json#",
            "The events of the whole log after position `after` (default 0), whole, in log order, for "
            "external audit systems: ask again with `after` set to the `lastPosition` returned. At most "
            "`limit` (1000) a page."),
}


def reference(endpoints: list[Endpoint]) -> dict:
    return {
        "$schema": "/schemas/common/api-reference-v0.json#",
        "apiVersion": "v1",
        "serviceName": "journal",
        "title": "Journal Service",
        "description": "taskjournal's own read-only API beside the Queue's: where a task stands in its queue, "
                       "how long claims wait, and what happened to tasks and task groups, and who did it "
                       "(docs/adr/0015). Same Hawk authentication, scopes and error bodies as the Queue.",
        "entries": [_entry(endpoint) for endpoint in endpoints],
    }


def _entry(endpoint: Endpoint) -> dict:
    category, title, output, description = DOCS[endpoint.name]
    entry: dict[str, object] = {"type": "function", "method": endpoint.method.lower(), "route": endpoint.route,
             "args": list(endpoint.url_params), "name": endpoint.name, "stability": "experimental",
             "title": title, "description": description, "category": category, "query": list(endpoint.query)}
    if endpoint.scopes is not None:
        entry["scopes"] = endpoint.scopes
    if output is not None:
        entry["output"] = SCHEMAS + output  # served by the gateway (shared/schemas/journal-*.json)
    return entry


def reference_endpoint(endpoints: list[Endpoint]) -> Endpoint:
    """GET /references/api.json: the reference of `endpoints` (public: no scopes)."""
    document = reference(endpoints)

    async def api_reference(ctx: Context) -> dict:
        return document

    return Endpoint("apiReference", "GET", "/references/api.json", api_reference)
