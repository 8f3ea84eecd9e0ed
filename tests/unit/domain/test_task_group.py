"""Unit tests of the TaskGroup aggregate (behaviour spec §6.1-§6.2)."""

import pytest
from eventsourcing.application import Application

from taskjournal.shared.domain.errors import RequestConflict
from taskjournal.shared.domain.ids import group_uuid, task_uuid
from taskjournal.shared.domain.task_group import GROUP_EXTENSION_MS, LATEST_MS, TaskGroup, group_expiry
from taskjournal.shared.domain.time import format_ms

from tests.support.domain import DAY, HOUR, NOW, new_task_id

EXPIRES = NOW + 10 * DAY


def make_group(scheduler_id: str = "sched", expires: int = EXPIRES, group_id: str | None = None) -> TaskGroup:
    return TaskGroup(task_group_id=group_id or new_task_id(), scheduler_id=scheduler_id, expires=expires)


def test_extension_is_one_hour():
    assert GROUP_EXTENSION_MS == HOUR


def test_new_group_body_has_no_sealed_field():
    group = make_group(group_id="gGGGGGGGQ1qGCR8N6CGJjQ")
    assert group.public_body() == {"taskGroupId": "gGGGGGGGQ1qGCR8N6CGJjQ", "schedulerId": "sched",
                            "expires": format_ms(EXPIRES)}
    assert group.sealed is None


def test_group_id_is_distinct_from_the_task_id_of_the_same_slug():
    slug = new_task_id()
    group = make_group(group_id=slug)
    assert group.id == group_uuid(slug) == TaskGroup.create_id(slug)
    assert group.id != task_uuid(slug)


class TestAdmit:
    def test_admit_with_the_same_scheduler_and_an_earlier_expiry_changes_nothing(self):
        group = make_group()
        version = group.version
        group.admit("sched", EXPIRES - DAY)
        assert group.expires == EXPIRES and group.version == version

    def test_admit_with_an_equal_expiry_does_not_extend(self):
        group = make_group()
        version = group.version
        group.admit("sched", EXPIRES)
        assert group.expires == EXPIRES and group.version == version

    def test_admit_of_a_task_outliving_the_group_extends_it_to_one_hour_past_the_task(self):
        group = make_group()
        group.admit("sched", EXPIRES + 1)
        assert group.expires == EXPIRES + 1 + HOUR
        assert group.public_body()["expires"] == format_ms(EXPIRES + 1 + HOUR)

    def test_extension_compares_against_the_already_extended_expiry(self):
        group = make_group()
        group.admit("sched", EXPIRES + DAY)
        extended = EXPIRES + DAY + HOUR
        version = group.version
        group.admit("sched", EXPIRES + DAY + 30 * 60 * 1000)  # later than the task, earlier than the group
        assert group.expires == extended and group.version == version
        group.admit("sched", extended + 1)
        assert group.expires == extended + 1 + HOUR

    def test_group_expiry_never_shrinks(self):
        group = make_group()
        for expires in (EXPIRES + 5 * DAY, EXPIRES + DAY, NOW):
            before = group.expires
            group.admit("sched", expires)
            assert group.expires >= before

    def test_admit_with_another_scheduler_is_a_conflict(self):
        group = make_group(group_id="gGGGGGGGQ1qGCR8N6CGJjQ")
        with pytest.raises(RequestConflict) as caught:
            group.admit("other", EXPIRES + DAY)
        assert caught.value.message == (
            "Task group `gGGGGGGGQ1qGCR8N6CGJjQ` contains tasks with a schedulerId other than `other`. "
            "All tasks in the same task-group must have the same schedulerId.")
        assert caught.value.code == "RequestConflict"
        assert group.expires == EXPIRES  # a refused task does not extend the group

    def test_admit_to_a_sealed_group_is_a_conflict(self):
        group = make_group(group_id="gGGGGGGGQ1qGCR8N6CGJjQ")
        group.seal(NOW)
        with pytest.raises(RequestConflict) as caught:
            group.admit("sched", EXPIRES - DAY)
        assert caught.value.message == "Task group `gGGGGGGGQ1qGCR8N6CGJjQ` is sealed and does not accept new tasks."

    def test_scheduler_mismatch_is_reported_before_sealing(self):
        group = make_group()
        group.seal(NOW)
        with pytest.raises(RequestConflict, match="schedulerId other than `other`"):
            group.admit("other", EXPIRES)


    def test_extension_is_capped_at_the_last_instant_the_api_can_write(self):
        assert group_expiry(EXPIRES) == EXPIRES + HOUR
        assert group_expiry(LATEST_MS - HOUR) == LATEST_MS
        assert group_expiry(LATEST_MS - 1) == LATEST_MS
        assert format_ms(LATEST_MS) == "9999-12-31T23:59:59.999Z"
        group = make_group()
        group.admit("sched", LATEST_MS - 1)
        assert group.expires == LATEST_MS
        version = group.version
        group.admit("sched", LATEST_MS)  # not later than the capped expiry: no change
        assert group.version == version


class TestResolve:
    """The group is seen resolved up to a log position; only later resolutions count again."""

    def test_first_resolution_is_recorded_through_the_position_seen(self):
        group = make_group()
        assert group.resolved_through == 0
        assert group.resolve(10, 15, NOW) is True
        assert group.resolved_through == 15

    def test_a_trigger_older_than_the_position_seen_is_recorded_at_the_trigger_when_later(self):
        group = make_group()
        assert group.resolve(20, 15, NOW) is True
        assert group.resolved_through == 20

    @pytest.mark.parametrize("trigger", [10, 14, 15])
    def test_a_late_or_redelivered_trigger_changes_nothing(self, trigger):
        group = make_group()
        group.resolve(10, 15, NOW)
        version = group.version
        assert group.resolve(trigger, 30, NOW + HOUR) is False
        assert group.version == version and group.resolved_through == 15

    def test_a_later_resolution_resolves_the_group_again(self):
        group = make_group()
        group.resolve(10, 15, NOW)
        assert group.resolve(16, 16, NOW) is True
        assert group.resolved_through == 16


class TestSeal:
    def test_seal_records_the_time(self):
        group = make_group()
        group.seal(NOW + 5)
        assert group.sealed == NOW + 5
        assert group.public_body()["sealed"] == format_ms(NOW + 5)

    def test_seal_twice_keeps_the_first_time(self):
        group = make_group()
        group.seal(NOW)
        version = group.version
        group.seal(NOW + HOUR)
        assert group.sealed == NOW and group.version == version
        assert group.public_body()["sealed"] == format_ms(NOW)


def test_replayed_group_has_an_equal_view():
    app = Application()
    group = make_group()
    group.admit("sched", EXPIRES + DAY)
    group.seal(NOW)
    app.save(group)
    stored = app.repository.get(group.id)
    assert stored.public_body() == group.public_body()
    assert (stored.sealed, stored.expires, stored.scheduler_id) == (NOW, EXPIRES + DAY + HOUR, "sched")
