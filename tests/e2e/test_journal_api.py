"""Our own API (/api/journal/v1) on the real server: queue positions against
the order claimWork actually claims in, wait-time figures against the claim
times the queue reports, and the pipeline's 400/403/404 answers."""

import datetime as dt
import math
import secrets

import mohawk
import requests
import taskcluster
from prometheus_client.parser import text_string_to_metric_families

from taskjournal.shared.domain.time import parse_ms
from tests.support.server import ROOT_CLIENT_ID, task_definition

PREFIX = "/api/journal/v1"


def get(server, path: str, credentials: dict | None = None) -> requests.Response:
    """A GET signed with Hawk as the official client signs (root by default; {} for anonymous)."""
    url = server.root_url + PREFIX + path
    creds = {"clientId": ROOT_CLIENT_ID, "accessToken": server.token} if credentials is None else credentials
    headers = {}
    if creds:
        ext = taskcluster.Queue(server.options(creds)).makeHawkExt() or None  # temporary credentials' certificate
        sender = mohawk.Sender({"id": creds["clientId"], "key": creds["accessToken"], "algorithm": "sha256"},
                               url, "GET", content=b"", content_type="", ext=ext)
        headers["Authorization"] = sender.request_header
    return requests.get(url, headers=headers, timeout=30)


def fresh_queue() -> str:
    return f"journal-prov/w{secrets.token_hex(4)}"


def create(queue, task_queue_id: str, **overrides) -> str:
    task_id = taskcluster.slugId()
    queue.createTask(task_id, task_definition(task_queue_id, **overrides))
    return task_id


def claim_one(queue, task_queue_id: str) -> str:
    reply = queue.claimWork(task_queue_id, {"workerGroup": "g", "workerId": "w", "tasks": 1})
    [claimed] = reply["tasks"]
    return claimed["status"]["taskId"]


def predicted_order(server, task_ids: list[str]) -> list[str]:
    """The pending tasks by their reported position, checking positions run 1..n."""
    places = {t: get(server, f"/task/{t}/queue-position").json() for t in task_ids}
    pending = sorted((p["position"], t) for t, p in places.items() if p["state"] == "pending")
    assert [position for position, _ in pending] == list(range(1, len(pending) + 1))
    assert all(places[t]["pendingAhead"] == position - 1 for position, t in pending)
    return [t for _, t in pending]


def test_positions_are_the_order_claim_work_claims_in(server, queue):
    task_queue_id = fresh_queue()
    ids = [create(queue, task_queue_id, priority=p) for p in ("low", "low", "high", "lowest", "low", "medium")]
    queue.changeTaskPriority(ids[4], {"newPriority": "highest"})
    queue.cancelTask(ids[2])
    order = predicted_order(server, ids)
    assert order[0] == ids[4] and ids[2] not in order
    claimed = []
    for step in range(len(order)):
        assert predicted_order(server, ids) == order[step:]  # those behind move up as claims take the first
        claimed.append(claim_one(queue, task_queue_id))
    assert claimed == order


def test_a_task_that_is_not_pending_has_no_position(server, queue):
    task_queue_id = fresh_queue()
    running, cancelled = create(queue, task_queue_id), create(queue, task_queue_id)
    assert claim_one(queue, task_queue_id) == running
    queue.cancelTask(cancelled)
    for task_id, state in ((running, "running"), (cancelled, "exception")):
        reply = get(server, f"/task/{task_id}/queue-position")
        assert reply.status_code == 200
        assert reply.json() == {"taskId": task_id, "taskQueueId": task_queue_id, "state": state, "runId": None,
                                "position": None, "pendingAhead": None}


def test_wait_times_are_the_percentiles_of_the_claims_of_the_last_hour(server, queue):
    task_queue_id = fresh_queue()
    empty = get(server, f"/task-queues/{task_queue_id}/wait-times").json()
    assert empty == {"taskQueueId": task_queue_id, "window": 3_600_000, "claims": 0, "p50": None, "p95": None,
                     "p99": None}
    ids = [create(queue, task_queue_id) for _ in range(5)]
    for _ in ids:
        claim_one(queue, task_queue_id)
    waits = []
    for task_id in ids:
        run = queue.status(task_id)["status"]["runs"][0]
        waits.append(parse_ms(run["started"]) - parse_ms(run["scheduled"]))
    waits.sort()
    figures = get(server, f"/task-queues/{task_queue_id}/wait-times").json()
    assert figures == {"taskQueueId": task_queue_id, "window": 3_600_000, "claims": 5,
                       "p50": waits[math.ceil(0.5 * 5) - 1], "p95": waits[-1], "p99": waits[-1]}
    assert claim_waits(server, task_queue_id) == {"count": 5, "+Inf": 5}


def test_an_unknown_task_is_404_in_taskclusters_format(server):
    task_id = taskcluster.slugId()
    reply = get(server, f"/task/{task_id}/queue-position")
    assert reply.status_code == 404
    body = reply.json()
    assert body["code"] == "ResourceNotFound" and task_id in body["message"]
    assert body["requestInfo"]["method"] == "queuePosition" and body["requestInfo"]["params"] == {"taskId": task_id}


def test_a_malformed_task_id_is_400(server):
    reply = get(server, "/task/not-a-slug/queue-position")
    assert reply.status_code == 400 and reply.json()["code"] == "InvalidRequestArguments"


def test_without_the_scopes_the_answer_is_403(server, queue):
    task_queue_id = fresh_queue()
    task_id = create(queue, task_queue_id)
    for path in (f"/task/{task_id}/queue-position", f"/task-queues/{task_queue_id}/wait-times"):
        reply = get(server, path, credentials={})  # the test server's anonymous role has no scopes
        assert reply.status_code == 403 and reply.json()["code"] == "InsufficientScopes"
    now = dt.datetime.now(dt.timezone.utc)
    other = taskcluster.createTemporaryCredentials(
        ROOT_CLIENT_ID, server.token, now - dt.timedelta(minutes=1), now + dt.timedelta(hours=1),
        ["journal:queue-position:someOtherTask", f"journal:wait-times:{task_queue_id}"])
    refused = get(server, f"/task/{task_id}/queue-position", credentials=other)
    assert refused.status_code == 403
    assert f"journal:queue-position:{task_id}" in refused.json()["message"]
    allowed = get(server, f"/task-queues/{task_queue_id}/wait-times", credentials=other)
    assert allowed.status_code == 200


def test_upstreams_prefix_does_not_serve_our_routes(server, queue):
    task_id = create(queue, fresh_queue())
    reply = requests.get(f"{server.root_url}/api/queue/v1/task/{task_id}/queue-position", timeout=30)
    assert reply.status_code == 404


def test_claim_task_counts_in_wait_times_and_the_histogram_once(server, queue):
    task_queue_id = fresh_queue()
    task_id = create(queue, task_queue_id)
    for _ in range(2):  # the same worker's repeated claimTask is accepted and commits nothing new
        queue.claimTask(task_id, "0", {"workerGroup": "g", "workerId": "w"})
    run = queue.status(task_id)["status"]["runs"][0]
    wait = parse_ms(run["started"]) - parse_ms(run["scheduled"])
    figures = get(server, f"/task-queues/{task_queue_id}/wait-times").json()
    assert (figures["claims"], figures["p50"], figures["p99"]) == (1, wait, wait)
    assert claim_waits(server, task_queue_id)["count"] == 1


def claim_waits(server, task_queue_id: str) -> dict:
    """The claim-wait histogram of one task queue on /metrics: its count and its +Inf bucket."""
    text = requests.get(server.root_url + "/metrics", timeout=30).text
    [family] = [f for f in text_string_to_metric_families(text) if f.name == "taskjournal_claim_wait_seconds"]
    found = {}
    for sample in family.samples:
        if sample.labels.get("task_queue_id") != task_queue_id:
            continue
        if sample.name.endswith("_count"):
            found["count"] = sample.value
        elif sample.labels.get("le") == "+Inf":
            found["+Inf"] = sample.value
    return found
