"""The Journal on its two stores, SQLite and PostgreSQL: commands go through
`open_journal`, and what they leave behind is read back through the inline
read model (`journal.views`) and by replaying aggregates
(`journal.repository.get`). Every test runs on both stores.

PostgreSQL: the server named by TASKJOURNAL_TEST_DATABASE_URL (set by
tests/conftest.py and .ci/run); this module gets a fresh database of its own
on it, emptied (`DROP SCHEMA public CASCADE`) before the journal opens and
dropped afterwards."""

import json
import threading
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from taskjournal.shared.domain import definition as definitions
from taskjournal.shared.domain.errors import InputError, RequestConflict, ResourceNotFound
from taskjournal.shared.domain.ids import task_id_of, task_uuid
from taskjournal.shared.domain.task import Task
from taskjournal.shared.domain.time import format_ms
from taskjournal.shared.journal import open_journal

DATABASE_URL_ENV = "TASKJOURNAL_TEST_DATABASE_URL"

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
NOW = 1_700_000_000_000  # 2023-11-14T22:13:20.000Z
CLAIM_TIMEOUT = 20 * MINUTE


# ====================================================================== stores

class Store:
    """One kind of store: the journal under test, and more journals on the same data."""

    def __init__(self, kind: str, database_url: str | None, data_dir: str):
        self.kind, self.database_url, self.data_dir = kind, database_url, data_dir
        self.opened = []
        self.journal = self.open()

    def open(self):
        journal = open_journal(self.database_url, self.data_dir, max_connections=16)
        self.opened.append(journal)
        return journal

    def close(self):
        for journal in self.opened:
            journal.close()


@pytest.fixture(scope="module")
def postgres_store(tmp_path_factory, postgres_base_url):
    base_url = postgres_base_url
    if not base_url:
        pytest.skip(f"no PostgreSQL ({DATABASE_URL_ENV}): the PostgreSQL journal tests need a PostgreSQL server")
    name = f"tj_store_{uuid.uuid4().hex[:12]}"
    admin_url = urlunsplit(urlsplit(base_url)._replace(path="/postgres"))
    url = urlunsplit(urlsplit(base_url)._replace(path=f"/{name}"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    store = Store("postgres", url, str(tmp_path_factory.mktemp("postgres")))
    yield store
    store.close()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "postgres":
        yield request.getfixturevalue("postgres_store")
        return
    store = Store("sqlite", None, str(tmp_path))
    yield store
    store.close()


@pytest.fixture
def journal(store):
    return store.journal


# ====================================================================== helpers

def new_task_id() -> str:
    return task_id_of(uuid.uuid4())


def new_queue() -> str:
    """A task queue of its own for each test (the PostgreSQL tables are shared by the module)."""
    return f"tj-test/{uuid.uuid4().hex[:16]}"


def make_definition(task_id: str, now: int = NOW, queue: str | None = None, **fields) -> dict:
    body = {
        "taskQueueId": queue or new_queue(),
        "created": format_ms(now),
        "deadline": format_ms(now + HOUR),
        "payload": {"command": ["true"]},
        "metadata": {"name": "t", "description": "d", "owner": "o@example.com", "source": "https://example.com"},
        **fields,
    }
    return definitions.normalize(task_id, body, now)


def create(journal, now: int = NOW, task_id: str | None = None, queue: str | None = None, **fields) -> Task:
    task_id = task_id or new_task_id()
    return journal.create_task(task_id, make_definition(task_id, now, queue, **fields), now)


def stored_status(journal, task_id: str) -> dict | None:
    raw = journal.views.task_status(task_id)
    return None if raw is None else json.loads(raw)


def replayed(journal, task_id: str) -> Task:
    return journal.repository.get(task_uuid(task_id))


def assert_consistent(journal, task: Task) -> None:
    """The read model, the aggregate returned by the command and a replay agree."""
    assert stored_status(journal, task.task_id) == task.status()
    assert replayed(journal, task.task_id).status() == task.status()


# ====================================================================== createTask

def test_created_task_is_in_the_read_model(journal):
    task = create(journal, retries=3, priority="high")
    assert task.state == "pending"
    assert stored_status(journal, task.task_id) == task.status()
    assert stored_status(journal, task.task_id)["runs"][0]["reasonCreated"] == "scheduled"
    assert json.loads(journal.views.task_definition(task.task_id)) == task.public_body()
    assert replayed(journal, task.task_id).definition == task.definition
    assert journal.task(task.task_id).status() == task.status()


def test_unknown_task_is_absent_everywhere(journal):
    task_id = new_task_id()
    assert journal.task(task_id) is None
    assert journal.views.task_status(task_id) is None
    with pytest.raises(ResourceNotFound, match=f"taskId `{task_id}` not found"):
        journal.schedule_task(task_id, NOW)
    with pytest.raises(ResourceNotFound, match=f"Task `{task_id}` not found"):
        journal.cancel_task(task_id, NOW)


def test_idempotent_create_returns_the_existing_task(journal):
    task_id = new_task_id()
    definition = make_definition(task_id)
    first = journal.create_task(task_id, definition, NOW)
    version = replayed(journal, task_id).version
    again = journal.create_task(task_id, make_definition(task_id, queue=definition["taskQueueId"]), NOW + SECOND)
    assert again.status() == first.status()
    assert replayed(journal, task_id).version == version  # nothing recorded
    journal.claim_task(task_id, 0, "wg", "wid", NOW, NOW + CLAIM_TIMEOUT)
    live = journal.create_task(task_id, definition, NOW + 2 * SECOND)
    assert live.state == "running"  # a repeat answers with the live status
    assert_consistent(journal, live)


def test_conflicting_create_is_refused_and_keeps_the_first_definition(journal):
    task_id = new_task_id()
    first = create(journal, task_id=task_id)
    other = dict(first.definition, payload={"command": ["false"]})
    with pytest.raises(RequestConflict) as caught:
        journal.create_task(task_id, other, NOW)
    assert caught.value.message == (f"taskId `{task_id}` already used by another task. "
                                    "This could be the result of faulty idempotency!")
    assert json.loads(journal.views.task_definition(task_id)) == first.public_body()
    assert replayed(journal, task_id).definition == first.definition


def test_task_group_scheduler_mismatch_is_refused_and_nothing_is_stored(journal):
    group_id = new_task_id()
    create(journal, taskGroupId=group_id, schedulerId="sched-a")
    task_id = new_task_id()
    with pytest.raises(RequestConflict, match="contains tasks with a schedulerId other than `sched-b`"):
        create(journal, task_id=task_id, taskGroupId=group_id, schedulerId="sched-b")
    assert journal.task(task_id) is None and journal.views.task_status(task_id) is None
    assert journal.views.group_size(group_id) == 1


def test_sealed_group_refuses_new_tasks_and_repeats(journal):
    group_id = new_task_id()
    member = create(journal, taskGroupId=group_id)
    sealed = journal.seal_task_group(group_id, NOW + SECOND)
    assert json.loads(journal.views.group_body(group_id))["sealed"] == format_ms(NOW + SECOND)
    assert journal.seal_task_group(group_id, NOW + HOUR).sealed == sealed.sealed == NOW + SECOND
    with pytest.raises(RequestConflict, match="is sealed"):
        create(journal, taskGroupId=group_id)
    with pytest.raises(RequestConflict, match="is sealed"):
        journal.create_task(member.task_id, member.definition, NOW)
    assert journal.views.group_size(group_id) == 1


def test_group_expiry_grows_with_its_tasks_even_when_a_create_conflicts(journal):
    group_id = new_task_id()
    first = create(journal, taskGroupId=group_id, expires=format_ms(NOW + 2 * HOUR))
    assert json.loads(journal.views.group_body(group_id))["expires"] == format_ms(NOW + 3 * HOUR)
    create(journal, taskGroupId=group_id, expires=format_ms(NOW + 2 * HOUR + 30 * MINUTE))  # within the hour
    assert journal.task_group(group_id).expires == NOW + 3 * HOUR
    conflicting = dict(first.definition, expires=format_ms(NOW + 5 * HOUR))
    with pytest.raises(RequestConflict, match="already used by another task"):
        journal.create_task(first.task_id, conflicting, NOW)
    assert journal.task_group(group_id).expires == NOW + 6 * HOUR
    assert json.loads(journal.views.group_body(group_id))["expires"] == format_ms(NOW + 6 * HOUR)


# ====================================================================== dependencies

def test_dependency_on_a_missing_task_is_an_input_error_and_nothing_is_stored(journal):
    existing = create(journal)
    missing, task_id = new_task_id(), new_task_id()
    with pytest.raises(InputError) as caught:
        create(journal, task_id=task_id, dependencies=[existing.task_id, missing])
    assert caught.value.message == f"Task dependencies are not satisfiable:\n`{missing}` does not exist"
    assert journal.task(task_id) is None
    assert journal.views.task_status(task_id) is None
    assert journal.views.group_size(task_id) == 0
    assert journal.views.dependents_page(existing.task_id, 0, 100) == []  # no dependency rows either
    assert stored_status(journal, existing.task_id) == existing.status()


def test_dependency_expiring_before_the_deadline_is_an_input_error(journal):
    short = create(journal, expires=format_ms(NOW + HOUR))
    task_id = new_task_id()
    with pytest.raises(InputError, match=f"`{short.task_id}` expires before the deadline"):
        create(journal, task_id=task_id, dependencies=[short.task_id], deadline=format_ms(NOW + 2 * HOUR))
    assert journal.task(task_id) is None


def test_dependencies_decide_whether_the_new_task_is_scheduled(journal):
    done, open_ = create(journal), create(journal)
    journal.claim_task(done.task_id, 0, "wg", "wid", NOW, NOW + CLAIM_TIMEOUT)
    journal.report(done.task_id, 0, "completed", NOW)
    assert create(journal, dependencies=[done.task_id]).state == "pending"
    waiting = create(journal, dependencies=[done.task_id, open_.task_id])
    assert waiting.state == "unscheduled"
    assert stored_status(journal, waiting.task_id)["state"] == "unscheduled"
    self_id = new_task_id()
    assert create(journal, task_id=self_id, dependencies=[self_id]).state == "unscheduled"
    assert journal.schedule_task(self_id, NOW).state == "pending"


# ====================================================================== claimWork

def test_claim_work_never_hands_a_run_out_twice(journal):
    queue = new_queue()
    task_ids = {create(journal, queue=queue).task_id for _ in range(100)}
    workers = 8
    barrier = threading.Barrier(workers)
    claimed: dict[str, list[tuple[str, int]]] = {f"w{i}": [] for i in range(workers)}
    errors = []

    def work(worker_id):
        try:
            barrier.wait()
            while True:
                tasks = journal.claim_work(queue, "wg", worker_id, 3, NOW, NOW + CLAIM_TIMEOUT)
                if not tasks:
                    return
                claimed[worker_id].extend((t.task_id, t.last_run["runId"]) for t in tasks)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    handed_out = [c for got in claimed.values() for c in got]
    assert len(handed_out) == len(set(handed_out)), "a run was handed out twice"
    assert sorted(handed_out) == sorted((task_id, 0) for task_id in task_ids)
    assert sum(1 for got in claimed.values() if got) > 1, "expected the work to be shared"
    for worker_id, got in claimed.items():
        for task_id, _ in got:
            status = stored_status(journal, task_id)
            assert status["state"] == "running"
            assert status["runs"][0]["workerId"] == worker_id
            assert replayed(journal, task_id).runs[0]["workerId"] == worker_id
    assert journal.views.pending_count(queue, NOW) == 0
    assert journal.claim_work(queue, "wg", "late", 5, NOW, NOW + CLAIM_TIMEOUT) == []


PRIORITIES = [("lowest", "a"), ("high", "b"), ("medium", "c"), ("high", "d"), ("lowest", "e"), ("highest", "f"),
              ("normal", "g")]
CLAIM_ORDER = ["f", "b", "d", "c", "a", "e", "g"]  # priority, then first in first out; normal is lowest


def fill_queue(journal, queue: str) -> dict[str, str]:
    names = {}
    for i, (priority, name) in enumerate(PRIORITIES):
        task = create(journal, NOW + i * SECOND, queue=queue, priority=priority)
        names[task.task_id] = name
    return names


def test_claim_work_takes_high_priority_first_and_fifo_within_a_priority(journal):
    queue = new_queue()
    names = fill_queue(journal, queue)
    later = NOW + MINUTE
    order = []
    for _ in PRIORITIES:
        [task] = journal.claim_work(queue, "wg", "wid", 1, later, later + CLAIM_TIMEOUT)
        order.append(names[task.task_id])
    assert order == CLAIM_ORDER
    assert journal.claim_work(queue, "wg", "wid", 1, later, later + CLAIM_TIMEOUT) == []


def test_claim_work_returns_a_batch_in_queue_order(journal):
    queue = new_queue()
    names = fill_queue(journal, queue)
    later = NOW + MINUTE
    first = journal.claim_work(queue, "wg", "wid", 4, later, later + CLAIM_TIMEOUT)
    rest = journal.claim_work(queue, "wg", "wid", 32, later, later + CLAIM_TIMEOUT)
    assert [names[t.task_id] for t in first] == CLAIM_ORDER[:4]
    assert [names[t.task_id] for t in rest] == CLAIM_ORDER[4:]
    for task in first + rest:
        assert task.state == "running" and task.last_run["workerId"] == "wid"
        assert_consistent(journal, task)


def test_claim_work_skips_canceled_and_expired_tasks(journal):
    queue = new_queue()
    canceled = create(journal, queue=queue, priority="highest")
    journal.cancel_task(canceled.task_id, NOW)
    short = create(journal, queue=queue, priority="high", deadline=format_ms(NOW + MINUTE))
    plain = create(journal, queue=queue)
    assert journal.views.pending_count(queue, NOW) == 2
    later = NOW + 2 * MINUTE  # past the deadline of `short`
    claimed = journal.claim_work(queue, "wg", "wid", 10, later, later + CLAIM_TIMEOUT)
    assert [t.task_id for t in claimed] == [plain.task_id]
    assert stored_status(journal, short.task_id)["state"] == "pending"


def test_retried_run_is_claimable_again(journal):
    queue = new_queue()
    task = create(journal, queue=queue, retries=1)
    [claimed] = journal.claim_work(queue, "wg", "w1", 1, NOW, NOW + CLAIM_TIMEOUT)
    task = journal.report_exception(task.task_id, 0, "worker-shutdown", NOW + SECOND)
    assert task.last_run["reasonCreated"] == "retry"
    assert_consistent(journal, task)
    [again] = journal.claim_work(queue, "wg", "w2", 1, NOW + 2 * SECOND, NOW + CLAIM_TIMEOUT)
    assert (again.task_id, again.last_run["runId"], again.last_run["workerId"]) == (task.task_id, 1, "w2")
    assert_consistent(journal, again)


# ====================================================================== commands through the journal

def test_each_command_keeps_the_read_model_in_step(journal):
    queue = new_queue()
    task = create(journal, queue=queue, retries=2)
    task_id = task.task_id
    steps = [
        lambda: journal.claim_task(task_id, 0, "wg", "w1", NOW, NOW + CLAIM_TIMEOUT),
        lambda: journal.claim_task(task_id, 0, "wg", "w1", NOW, NOW + CLAIM_TIMEOUT),  # same worker: accepted
        lambda: journal.reclaim_task(task_id, 0, NOW + MINUTE, NOW + MINUTE + CLAIM_TIMEOUT),
        lambda: journal.report(task_id, 0, "completed", NOW + 2 * MINUTE),
        lambda: journal.report(task_id, 0, "completed", NOW + 2 * MINUTE),  # repeat: accepted
        lambda: journal.rerun_task(task_id, NOW + 3 * MINUTE),
        lambda: journal.claim_work(queue, "wg", "w2", 1, NOW + 4 * MINUTE, NOW + 5 * MINUTE)[0],
        lambda: journal.report_exception(task_id, 1, "intermittent-task", NOW + 6 * MINUTE),
        lambda: journal.cancel_task(task_id, NOW + 7 * MINUTE),
    ]
    for step in steps:
        assert_consistent(journal, step())
    states = [r["state"] for r in stored_status(journal, task_id)["runs"]]
    assert states == ["completed", "exception", "exception"]
    assert stored_status(journal, task_id)["runs"][2]["reasonResolved"] == "canceled"
    with pytest.raises(RequestConflict, match="already claimed by another worker"):
        journal.claim_task(task_id, 2, "wg", "w1", NOW + 8 * MINUTE, NOW + HOUR)
    with pytest.raises(RequestConflict, match="is not running or failed"):
        journal.report(task_id, 0, "failed", NOW + 8 * MINUTE)
    with pytest.raises(ResourceNotFound, match="Run 9 not found"):
        journal.report(task_id, 9, "failed", NOW + 8 * MINUTE)
    assert_consistent(journal, journal.task(task_id))


def test_claim_expiry_and_deadline_resolvers(journal):
    queue = new_queue()
    task = create(journal, queue=queue, retries=1, deadline=format_ms(NOW + 30 * MINUTE))
    [claimed] = journal.claim_work(queue, "wg", "wid", 1, NOW, NOW + MINUTE)
    assert [c["task_id"] for c in journal.views.expired_claims(NOW + MINUTE, limit=10_000)
            if c["task_id"] == task.task_id] == [task.task_id]
    assert journal.expire_claim(task.task_id, 0, NOW + MINUTE, NOW + MINUTE) is True
    assert journal.expire_claim(task.task_id, 0, NOW + MINUTE, NOW + MINUTE) is False  # already done
    status = stored_status(journal, task.task_id)
    assert [(r["state"], r.get("reasonResolved")) for r in status["runs"]] == [
        ("exception", "claim-expired"), ("pending", None)]
    assert task.task_id not in {c["task_id"] for c in journal.views.expired_claims(NOW + HOUR, limit=10_000)}
    deadline = NOW + 30 * MINUTE
    assert task.task_id in journal.views.past_deadline(deadline, limit=10_000)
    assert journal.exceed_deadline(task.task_id, deadline) is True
    assert journal.exceed_deadline(task.task_id, deadline) is False
    assert stored_status(journal, task.task_id)["runs"][1]["reasonResolved"] == "deadline-exceeded"
    assert task.task_id not in journal.views.past_deadline(deadline + HOUR, limit=10_000)
    assert_consistent(journal, journal.task(task.task_id))


# ====================================================================== read model against replay

def test_read_model_matches_replayed_aggregates(store):
    journal = store.journal
    queue = new_queue()
    tasks = [create(journal, NOW + i, queue=queue, retries=i % 3) for i in range(12)]
    for i, task in enumerate(tasks[:8]):
        journal.claim_task(task.task_id, 0, "wg", f"w{i}", NOW + MINUTE, NOW + 2 * MINUTE)
    journal.report(tasks[0].task_id, 0, "completed", NOW + 2 * MINUTE)
    journal.report(tasks[1].task_id, 0, "failed", NOW + 2 * MINUTE)
    journal.report_exception(tasks[2].task_id, 0, "worker-shutdown", NOW + 2 * MINUTE)
    journal.report_exception(tasks[3].task_id, 0, "malformed-payload", NOW + 2 * MINUTE)
    journal.cancel_task(tasks[4].task_id, NOW + 2 * MINUTE)
    journal.expire_claim(tasks[5].task_id, 0, NOW + 2 * MINUTE, NOW + 3 * MINUTE)
    journal.rerun_task(tasks[1].task_id, NOW + 4 * MINUTE)
    journal.cancel_task(tasks[9].task_id, NOW + 4 * MINUTE)

    replicas = [journal, store.open()]  # a fresh journal replays without any cache
    for task in tasks:
        stored = stored_status(journal, task.task_id)
        for replica in replicas:
            assert replayed(replica, task.task_id).status() == stored
    pending = sum(1 for t in tasks if replayed(replicas[1], t.task_id).state == "pending")
    assert journal.views.pending_count(queue, NOW + 4 * MINUTE) == pending
    running = {t.task_id for t in tasks if replayed(replicas[1], t.task_id).state == "running"}
    assert {row["task_id"] for row in journal.views.claimed_page(queue, (0, ""), 100)} == running
    assert journal.views.position() == journal.recorder.max_notification_id()


def test_tasks_reads_several_tasks_as_task_does_one(store, journal):
    """Journal.tasks (claimWork's batch) gives what Journal.task gives, cached or
    not, in the order asked; None for a task that does not exist."""
    queue = f"batch/{uuid.uuid4().hex[:8]}"
    created = [create(journal, queue=queue) for _ in range(3)]
    cached = journal.task(created[1].task_id)  # now in the aggregate cache
    journal.cancel_task(created[2].task_id, NOW)  # an event the created object never saw
    unknown = new_task_id()
    ids = [created[2].task_id, unknown, created[0].task_id, cached.task_id]
    got = journal.tasks(ids)
    expected = [journal.task(task_id) for task_id in ids]
    assert [None if t is None else (t.task_id, t.version, t.status()) for t in got] == \
        [None if t is None else (t.task_id, t.version, t.status()) for t in expected]
    assert got[1] is None and got[0].state == "exception"
    assert store.open().tasks(ids[:1])[0].status() == got[0].status()  # another process: nothing cached


# ====================================================================== conflicts

def test_a_stale_save_is_refused_as_a_conflict_and_changes_nothing(journal):
    """Two copies of one task decide from the same version: the first save
    wins, the second is a RecordConflictError (the Journal's retry signal),
    its events and read-model rows are not written, and the store takes the
    next save as usual."""
    from eventsourcing.persistence import RecordConflictError

    task = create(journal)
    first, second = journal.task(task.task_id), journal.task(task.task_id)
    first.cancel(NOW + SECOND)
    journal.save(first)
    second.claim_task(0, "wg", "stale", NOW + SECOND, NOW + CLAIM_TIMEOUT)
    with pytest.raises(RecordConflictError):
        journal.save(second)
    assert stored_status(journal, task.task_id) == first.status()
    assert replayed(journal, task.task_id).status() == first.status()
    assert journal.views.claimed_count(task.definition["taskQueueId"]) == 0
    after = create(journal)
    assert_consistent(journal, after)


def test_concurrent_saves_commit_together_and_a_stale_one_fails_alone(journal):
    """Saves of many threads share commits (shared/store/group_commit.py);
    the one stale save among them fails with a conflict, the others land."""
    from eventsourcing.persistence import RecordConflictError

    stale_task = create(journal)
    stale = journal.task(stale_task.task_id)
    journal.cancel_task(stale_task.task_id, NOW + SECOND)
    tasks = [create(journal) for _ in range(12)]
    copies = [journal.task(t.task_id) for t in tasks]
    for copy in copies:
        copy.cancel(NOW + SECOND)
    stale.cancel(NOW + 2 * SECOND)
    outcome: dict[str, str] = {}
    start = threading.Barrier(len(copies) + 1)

    def save(aggregate):
        start.wait()
        try:
            journal.save(aggregate)
            outcome[aggregate.task_id] = "saved"
        except RecordConflictError:
            outcome[aggregate.task_id] = "conflict"

    threads = [threading.Thread(target=save, args=(a,)) for a in [*copies, stale]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcome.pop(stale_task.task_id) == "conflict"
    assert set(outcome.values()) == {"saved"} and len(outcome) == len(copies)
    for copy in copies:
        assert_consistent(journal, copy)
