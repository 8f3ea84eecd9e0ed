"""Objects in the log (the object service's Journal commands) on SQLite and
PostgreSQL: create-or-match, hashes per algorithm, finish, the uploadId rule,
replay and expiry."""

import threading

import pytest

from taskjournal.shared.domain.errors import InputError, RequestConflict, ResourceNotFound
from taskjournal.shared.domain.object import UPLOAD_LIFETIME_MS
from taskjournal.shared.store.replay import PROJECTIONS, rebuild
from taskjournal.shared.store.retention import drop_expired_objects

NOW = 1_900_000_000_000
EXPIRES = NOW + 86_400_000
UPLOAD = "nNUu9nkRSNKYp2oRvXDNvA"
OTHER_UPLOAD = "vTfSfQdYQIKRbzPjMwT9zw"
SHA = {"sha256": "a" * 64}


def test_create_is_idempotent_for_the_same_upload(journal):
    first = journal.create_upload("t/x", "proj", UPLOAD, EXPIRES, {}, NOW)
    again = journal.create_upload("t/x", "proj", UPLOAD, EXPIRES, SHA, NOW + 5)
    assert (again.upload_id, again.hashes, first.upload_expires) == (UPLOAD, SHA, NOW + UPLOAD_LIFETIME_MS)
    assert journal.object_for_download("t/x") is None  # in progress: invisible


@pytest.mark.parametrize("project, upload, expires", [
    ("other", UPLOAD, EXPIRES), ("proj", OTHER_UPLOAD, EXPIRES), ("proj", UPLOAD, EXPIRES + 1)])
def test_any_difference_conflicts(journal, project, upload, expires):
    journal.create_upload("t/x", "proj", UPLOAD, EXPIRES, {}, NOW)
    with pytest.raises(RequestConflict, match="Object already exists"):
        journal.create_upload("t/x", project, upload, expires, {}, NOW)


def test_an_upload_id_in_progress_belongs_to_one_name(journal):
    journal.create_upload("a", "proj", UPLOAD, EXPIRES, {}, NOW)
    with pytest.raises(RequestConflict, match="Object already exists"):
        journal.create_upload("b", "proj", UPLOAD, EXPIRES, {}, NOW)


def test_racing_uploads_for_one_upload_id_one_wins(journal):
    results, barrier = {}, threading.Barrier(8)

    def create(index):
        barrier.wait()
        try:
            journal.create_upload(f"name-{index}", "proj", UPLOAD, EXPIRES, {}, NOW)
            results[index] = "ok"
        except RequestConflict:
            results[index] = "conflict"

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results.values()) == ["conflict"] * 7 + ["ok"]


def test_a_hash_cannot_change(journal):
    journal.create_upload("t/x", "proj", UPLOAD, EXPIRES, SHA, NOW)
    with pytest.raises(RequestConflict, match="Content hash already exists with a different value"):
        journal.finish_upload("t/x", "proj", UPLOAD, {"sha256": "b" * 64}, NOW)


def test_finish_rules(journal):
    with pytest.raises(ResourceNotFound, match='Object "t/x" not found'):
        journal.finish_upload("t/x", "proj", UPLOAD, {}, NOW)
    journal.create_upload("t/x", "proj", UPLOAD, EXPIRES, {}, NOW)
    with pytest.raises(InputError, match="does not have projectId other"):
        journal.finish_upload("t/x", "other", UPLOAD, {}, NOW)
    with pytest.raises(RequestConflict, match=f"does not have uploadId {OTHER_UPLOAD}"):
        journal.finish_upload("t/x", "proj", OTHER_UPLOAD, {}, NOW)
    done = journal.finish_upload("t/x", "proj", UPLOAD, SHA, NOW + 1)
    assert done.is_finished and journal.object_for_download("t/x").hashes == SHA
    # finished: idempotent with recorded hashes (uploadId not checked), 409 otherwise
    journal.finish_upload("t/x", "proj", OTHER_UPLOAD, SHA, NOW + 2)
    with pytest.raises(RequestConflict, match="without hash algorithm sha512"):
        journal.finish_upload("t/x", "proj", UPLOAD, {"sha512": "c" * 128}, NOW)
    with pytest.raises(RequestConflict, match="with a different hash for algorithm sha256"):
        journal.finish_upload("t/x", "proj", UPLOAD, {"sha256": "d" * 64}, NOW)
    with pytest.raises(RequestConflict, match="Object already exists"):
        journal.create_upload("t/x", "proj", UPLOAD, EXPIRES, {}, NOW)
    # the finished upload's id is free again
    journal.create_upload("t/y", "proj", UPLOAD, EXPIRES, {}, NOW)


def _objects_table(journal) -> list[dict]:
    with journal.store.datastore.transaction(commit=False) as curs:
        curs.execute("SELECT * FROM tj_objects ORDER BY name")
        return [dict(row) for row in curs.fetchall()]


def test_replay_rebuilds_the_objects_table(journal):
    journal.create_upload("a", "proj", UPLOAD, EXPIRES, SHA, NOW)
    journal.create_upload("b", "proj", OTHER_UPLOAD, EXPIRES, {}, NOW)
    journal.negotiate_upload("b", OTHER_UPLOAD, "text/plain", 5)
    journal.finish_upload("b", "proj", OTHER_UPLOAD, SHA, NOW + 1)
    live = _objects_table(journal)
    assert len(live) == 2
    rebuild(journal, ["objects"])
    assert _objects_table(journal) == live
    assert "objects" in PROJECTIONS


def test_expiry_drops_expired_objects_and_stale_uploads(journal):
    journal.create_upload("expired", "proj", UPLOAD, NOW + 10, {}, NOW)
    journal.finish_upload("expired", "proj", UPLOAD, {}, NOW)
    journal.create_upload("stale-upload", "proj", OTHER_UPLOAD, EXPIRES * 2, {}, NOW)
    journal.create_upload("kept", "proj", "Qb3hC8GlS0O1tXqc7_kTwA", EXPIRES * 2, {}, NOW)
    journal.finish_upload("kept", "proj", "Qb3hC8GlS0O1tXqc7_kTwA", {}, NOW)
    assert drop_expired_objects(journal, NOW + 5) == []
    assert sorted(drop_expired_objects(journal, NOW + UPLOAD_LIFETIME_MS)) == ["expired", "stale-upload"]
    assert [row["name"] for row in _objects_table(journal)] == ["kept"]
    assert journal.object("expired") is None
    # the name is free again
    journal.create_upload("expired", "proj", UPLOAD, EXPIRES * 2, {}, NOW + UPLOAD_LIFETIME_MS)
