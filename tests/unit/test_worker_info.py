"""claimWork's worker bookkeeping: seen writes throttled per key, the
quarantine copy refreshed from the read model without losing a change made
in this process while the refresh ran."""

from taskjournal.services.api_gateway.worker_info import UPDATE_EVERY_MS, WorkerInfo

KEY = ("p/w", "wg", "w1")


class FakeJournal:
    def __init__(self):
        self.seen: list[tuple] = []
        self.rows: list[dict] = []
        self.views = self

    def record_seen(self, queue, queue_expires, now, worker) -> None:
        self.seen.append((queue, now, worker))

    def quarantined_workers(self, now: int) -> list[dict]:
        return [r for r in self.rows if r["quarantine_until"] > now]


def test_seen_is_written_once_per_half_hour_per_worker():
    journal = FakeJournal()
    info = WorkerInfo(journal, clock=lambda: 0)
    for now in (0, 1, UPDATE_EVERY_MS - 1, UPDATE_EVERY_MS, UPDATE_EVERY_MS + 5):
        if info.needs_write(*KEY, now):
            info.worker_seen(*KEY, now)
    assert [s[1] for s in journal.seen] == [0, UPDATE_EVERY_MS]
    info.worker_seen("p/w", "wg", "other", 7)  # another worker: its own key
    assert journal.seen[-1][2][:2] == ("wg", "other")


def test_a_failed_seen_write_is_tried_again():
    journal = FakeJournal()

    def fail(*args) -> None:
        raise RuntimeError("store down")
    journal.record_seen = fail  # type: ignore[method-assign]
    info = WorkerInfo(journal, clock=lambda: 0)
    try:
        info.worker_seen(*KEY, 0)
    except RuntimeError:
        pass
    assert info.needs_write(*KEY, 1)


def test_refresh_follows_the_read_model_and_keeps_a_newer_local_change():
    journal, now = FakeJournal(), [1_000_000]
    info = WorkerInfo(journal, clock=lambda: now[0])
    journal.rows = [{"task_queue_id": "p/w", "worker_group": "wg", "worker_id": "w1", "quarantine_until": 2_000_000}]
    info.refresh()
    assert info.is_quarantined(KEY, now[0])
    journal.rows = []  # lifted through another process
    now[0] += 5000
    info.refresh()
    assert not info.is_quarantined(KEY, now[0])
    info.note_quarantine(KEY, 3_000_000)  # quarantined here; a refresh that read before the commit sees nothing
    info.refresh()
    assert info.is_quarantined(KEY, now[0])
    now[0] += 5000  # later rounds follow the read model again
    info.refresh()
    assert not info.is_quarantined(KEY, now[0])
    assert not info.is_quarantined(KEY, 4_000_000)


def test_the_queue_is_written_with_the_first_worker_only():
    journal = FakeJournal()
    info = WorkerInfo(journal, clock=lambda: 0)
    calls = []
    journal.record_seen = lambda queue, expires, now, worker: calls.append((queue, expires, worker[1]))  # type: ignore[method-assign]
    for worker_id in ("a", "b", "c"):
        info.worker_seen("p/w", "wg", worker_id, 5)
    assert [(c[1] is not None, c[2]) for c in calls] == [(True, "a"), (False, "b"), (False, "c")]
