"""The retention rule: expired tasks and groups leave the log and the read
models; nothing younger, and nothing not yet relayed, goes."""

from taskjournal.shared.store.retention import GRACE_MS, drop_expired
from tests.support.journal import create_task

NOW = 1_900_000_000_000
HOUR = 3_600_000


def _create(journal, expires: int) -> str:
    return create_task(journal, "keep/w", NOW, expires=expires).task_id


def test_expired_task_and_group_leave_log_and_read_models_younger_ones_stay(journal):
    short, long = _create(journal, NOW + 2 * HOUR), _create(journal, NOW + 48 * HOUR)
    later = NOW + 2 * HOUR + HOUR + GRACE_MS + 1  # group expires one hour after its task

    assert drop_expired(journal, later) == (1, 1)

    assert journal.views.task_status(short) is None and journal.views.group_body(short) is None
    assert journal.task(short) is None
    assert journal.views.task_status(long) is not None and journal.task(long) is not None
    assert drop_expired(journal, later) == (0, 0)


def test_events_not_yet_relayed_are_kept(journal):
    task_id = _create(journal, NOW + 2 * HOUR)
    with journal.recorder.datastore.transaction(commit=True) as curs:
        curs.execute("CREATE TABLE IF NOT EXISTS tj_relay_position (name TEXT PRIMARY KEY, position BIGINT NOT NULL)")
        curs.execute("INSERT INTO tj_relay_position (name, position) VALUES ('default', 0)")
    assert drop_expired(journal, NOW + 10 * HOUR) == (0, 0)
    assert journal.views.task_status(task_id) is not None


def test_expired_task_queues_and_workers_leave_unless_quarantined(journal):
    """Upstream's expire-worker-info: queues past `expires`, workers past both
    `expires` and `quarantineUntil` (behaviour spec §3.7)."""
    from taskjournal.shared.store.retention import drop_expired_worker_info

    day = 24 * HOUR
    journal.declare_worker("old/w", "wg", "gone", NOW, NOW + HOUR)
    journal.declare_worker("old/w", "wg", "held", NOW, NOW + HOUR)
    journal.quarantine_worker("old/w", "wg", "held", NOW + 10 * day, "why", "someone", NOW)  # expires: now + 1 day
    journal.declare_worker("new/w", "wg", "fresh", NOW, NOW + 10 * day)
    later = NOW + day + GRACE_MS + 1

    assert drop_expired_worker_info(journal, later) == (1, 1)

    assert journal.views.worker("old/w", "wg", "gone") is None and journal.worker_record("old/w", "wg", "gone") is None
    assert journal.views.worker("old/w", "wg", "held") is not None  # quarantined: kept
    assert journal.views.task_queue("old/w", NOW) is None and journal.task_queue_record("old/w") is None
    assert journal.views.task_queue("new/w", later) is not None
    assert journal.views.worker("new/w", "wg", "fresh") is not None
    assert drop_expired_worker_info(journal, later) == (0, 0)
