"""A task whose claimWork reply cannot be written is never left claimed with
no worker (Journal.claim_work asks before committing), and tasks stored
before bodies were limited in depth are still served by every read and by
claimWork. The gateway runs in-process on a Journal of each store."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from taskjournal.services.api_gateway import handlers
from taskjournal.services.api_gateway.claimwork import PendingSignal
from taskjournal.services.bootstrap import gateway_app
from taskjournal.shared.config import Settings
from taskjournal.shared.domain import definition as definitions
from taskjournal.shared.domain.ids import task_id_of
from taskjournal.shared.domain.time import format_ms, now_ms

API = "/api/queue/v1"
HOUR = 3600 * 1000
DEEPEST_STORABLE = 253  # the read model's orjson.dumps(view) refuses a payload nested 254 levels


def new_task(journal, payload=None, queue: str | None = None):
    now = now_ms()
    task_id, queue = task_id_of(uuid.uuid4()), queue or f"tj-test/q{uuid.uuid4().hex[:12]}"
    body = {"taskQueueId": queue, "created": format_ms(now), "deadline": format_ms(now + HOUR),
            "payload": payload if payload is not None else {"command": ["true"]},
            "metadata": {"name": "t", "description": "d", "owner": "o@example.com", "source": "https://example.com"}}
    # straight to the journal: the gateway refuses such bodies now, older data may hold them
    return journal.create_task(task_id, definitions.normalize(task_id, body, now), now)


def nested(levels: int):
    value = "leaf"
    for _ in range(levels):
        value = {"a": value}
    return value


def run_state(journal, task_id: str) -> dict:
    return orjson.loads(journal.views.task_status(task_id))["runs"][-1]


# ---------------------------------------------------------------- the journal

def test_an_undeliverable_claim_is_resolved_as_malformed_payload_in_the_same_commit(journal):
    task = new_task(journal)
    queue, now = task.definition["taskQueueId"], now_ms()
    claimed = journal.claim_work(queue, "wg", "w1", 1, now, now + HOUR, deliverable=lambda t: False)
    assert claimed == []
    run = run_state(journal, task.task_id)
    assert (run["state"], run["reasonResolved"]) == ("exception", "malformed-payload")
    assert len(orjson.loads(journal.views.task_status(task.task_id))["runs"]) == 1  # never retried
    assert journal.claim_work(queue, "wg", "w2", 1, now, now + HOUR) == []
    assert journal.views.pending_count(queue, now) == 0


def test_only_the_undeliverable_task_of_a_batch_is_resolved(journal):
    good = new_task(journal)
    queue = good.definition["taskQueueId"]
    bad_id = new_task(journal, {"poison": True}, queue).task_id
    now = now_ms()
    claimed = journal.claim_work(queue, "wg", "w1", 2, now, now + HOUR,
                                 deliverable=lambda t: not t.definition["payload"].get("poison"))
    assert [t.task_id for t in claimed] == [good.task_id]
    assert run_state(journal, good.task_id)["state"] == "running"
    assert run_state(journal, bad_id)["reasonResolved"] == "malformed-payload"


# ---------------------------------------------------------------- the gateway, in-process

@pytest.fixture
async def client(journal, tmp_path):
    settings = Settings(root_url="http://localhost", data_dir=tmp_path, root_client_id="root",
                        root_access_token="secret", anonymous_scopes=("*",), claimwork_wait=0.2)
    with ThreadPoolExecutor(4) as executor:
        app = gateway_app(settings, journal, executor, PendingSignal())
        async with TestClient(TestServer(app)) as test_client:
            yield test_client


async def answer(client, method: str, path: str, body=None) -> dict:
    reply = await client.request(method, API + path, json=body)
    assert reply.status == 200, (method, path, reply.status, (await reply.text())[:300])
    return await reply.json()


async def test_tasks_stored_too_deep_for_orjson_are_served_by_every_read_and_by_claim_work(client, journal):
    """Before the depth limit a payload could be nested 253 levels: every reply
    wrapping it went past orjson's 255 levels and answered 500 - claimWork
    after committing its claim, leaving the task running with no worker."""
    payload = nested(DEEPEST_STORABLE)
    task = new_task(journal, payload)
    task_id, queue = task.task_id, task.definition["taskQueueId"]
    assert (await answer(client, "GET", f"/task/{task_id}"))["payload"] == payload
    assert (await answer(client, "POST", "/tasks", {"taskIds": [task_id]}))["tasks"][0]["task"]["payload"] == payload
    assert (await answer(client, "POST", "/tasks/status", {"taskIds": [task_id]}))["statuses"][0]["taskId"] == task_id
    assert (await answer(client, "GET", f"/task-group/{task_id}/list"))["tasks"][0]["task"]["payload"] == payload
    assert (await answer(client, "GET", f"/task-queues/{queue}/pending"))["tasks"][0]["task"]["payload"] == payload
    claimed = await answer(client, "POST", f"/claim-work/{queue}", {"workerGroup": "wg", "workerId": "w1", "tasks": 1})
    assert [t["task"]["payload"] for t in claimed["tasks"]] == [payload]
    assert claimed["tasks"][0]["credentials"]["clientId"].startswith(f"task-client/{task_id}/0/on/wg/w1/")
    assert (await answer(client, "GET", f"/task-queues/{queue}/claimed"))["tasks"][0]["taskId"] == task_id
    assert (await answer(client, "GET", f"/task/{task_id}/status"))["status"]["runs"][0]["workerId"] == "w1"


async def test_claim_work_never_commits_a_claim_whose_reply_it_cannot_write(client, journal, monkeypatch):
    poison = new_task(journal)
    queue = poison.definition["taskQueueId"]
    fine = new_task(journal, queue=queue)
    real_reply = handlers.claim_reply
    monkeypatch.setattr(handlers, "claim_reply",
                        lambda services, task: None if task.task_id == poison.task_id else real_reply(services, task))
    claimed = await answer(client, "POST", f"/claim-work/{queue}", {"workerGroup": "wg", "workerId": "w1", "tasks": 4})
    assert [t["status"]["taskId"] for t in claimed["tasks"]] == [fine.task_id]
    status = (await answer(client, "GET", f"/task/{poison.task_id}/status"))["status"]
    assert status["state"] == "exception" and status["runs"][0]["reasonResolved"] == "malformed-payload"
