"""Unit tests of the Task aggregate and of the createTask definition rules
(behaviour spec §2, §3, §7.13-§7.22). Every command takes `now` explicitly."""

import copy

import pytest
from eventsourcing.application import Application

from taskjournal.shared.domain import definition as definitions
from taskjournal.shared.domain.errors import InputError, RequestConflict, ResourceNotFound
from taskjournal.shared.domain.ids import task_id_of, task_uuid
from taskjournal.shared.domain.task import MAX_RUNS, Task
from taskjournal.shared.domain.time import format_ms, parse_ms

from tests.support.domain import (CLAIM_TIMEOUT, DAY, HOUR, MINUTE, NOW, SECOND, claim_last, make_task, new_task_id,
                      pending_task, request_body, running_task)

DEADLINE = NOW + HOUR  # the deadline of every task built with the defaults of request_body
RETRY_REASONS = {"worker-shutdown": "retry", "intermittent-task": "task-retry"}
FINAL_REASONS = ["malformed-payload", "resource-unavailable", "internal-error"]
ALL_REASONS = [*RETRY_REASONS, *FINAL_REASONS]


def normalize(body: dict, now: int = NOW, task_id: str = "fN1vJQ0tQ1qGCR8N6CGJjQ") -> dict:
    return definitions.normalize(task_id, body, now)


def unchanged(task: Task):
    """Context manager asserting that the block records no event on `task`."""
    class _Unchanged:
        def __enter__(self):
            self.version, self.status = task.version, copy.deepcopy(task.status())

        def __exit__(self, *exc):
            assert task.version == self.version, "no event expected"
            assert task.status() == self.status
            return False
    return _Unchanged()


# ====================================================================== definition rules (createTask)

class TestDefinitionDefaults:
    def test_defaults_are_applied(self):
        d = normalize(request_body(), task_id="fN1vJQ0tQ1qGCR8N6CGJjQ")
        assert d["taskQueueId"] == "prov/wt"
        assert d["schedulerId"] == "-"
        assert d["projectId"] == "none"
        assert d["taskGroupId"] == "fN1vJQ0tQ1qGCR8N6CGJjQ"
        assert d["dependencies"] == []
        assert d["requires"] == "all-completed"
        assert d["routes"] == []
        assert d["priority"] == "lowest"
        assert d["retries"] == 5
        assert d["scopes"] == []
        assert d["tags"] == {} and d["extra"] == {}
        assert set(d) == set(definitions.FIELDS)
        assert "provisionerId" not in d and "workerType" not in d

    def test_given_values_are_kept(self):
        body = request_body(schedulerId="sched", projectId="proj", taskGroupId="gGGGGGGGQ1qGCR8N6CGJjQ",
                            dependencies=["b", "a"], requires="all-resolved", routes=["r2", "r1"],
                            priority="high", retries=0, scopes=["s:*"], tags={"k": "v"}, extra={"x": 1})
        d = normalize(body)
        assert (d["schedulerId"], d["projectId"], d["taskGroupId"]) == ("sched", "proj", "gGGGGGGGQ1qGCR8N6CGJjQ")
        assert d["dependencies"] == ["b", "a"] and d["routes"] == ["r2", "r1"]  # order preserved
        assert (d["requires"], d["priority"], d["retries"]) == ("all-resolved", "high", 0)
        assert d["scopes"] == ["s:*"] and d["tags"] == {"k": "v"} and d["extra"] == {"x": 1}

    def test_normal_priority_is_stored_as_lowest(self):
        assert normalize(request_body(priority="normal"))["priority"] == "lowest"

    @pytest.mark.parametrize("level", ["highest", "very-high", "high", "medium", "low", "very-low", "lowest"])
    def test_other_priorities_are_stored_as_given(self, level):
        assert normalize(request_body(priority=level))["priority"] == level

    def test_default_expires_is_deadline_plus_one_calendar_year(self):
        d = normalize(request_body(deadline="2023-11-15T01:02:03.456Z"))
        assert d["expires"] == "2024-11-15T01:02:03.456Z"

    def test_default_expires_of_a_leap_day_deadline_is_first_of_march(self):
        now = parse_ms("2024-02-29T10:00:00.000Z")
        d = normalize(request_body(now, deadline="2024-02-29T12:00:00.000Z"), now)
        assert d["expires"] == "2025-03-01T12:00:00.000Z"

    def test_explicit_expires_is_kept(self):
        d = normalize(request_body(expires=format_ms(NOW + 2 * DAY)))
        assert d["expires"] == format_ms(NOW + 2 * DAY)

    def test_times_are_reserialised_with_milliseconds_in_utc(self):
        d = normalize(request_body(created="2023-11-14T22:13:20.123456Z",
                                   deadline="2023-11-15T00:13:20+01:00",
                                   expires="2023-11-16T00:00:00.9999Z"))
        assert d["created"] == "2023-11-14T22:13:20.123Z"
        assert d["deadline"] == "2023-11-14T23:13:20.000Z"
        assert d["expires"] == "2023-11-16T00:00:00.999Z"

    def test_public_body_derives_provisioner_and_worker_type(self):
        view = definitions.public_body(normalize(request_body(provisionerId=None, workerType=None,
                                                              taskQueueId="p-1/w-2")))
        assert (view["provisionerId"], view["workerType"], view["taskQueueId"]) == ("p-1", "w-2", "p-1/w-2")


class TestQueueIdentity:
    def test_provisioner_and_worker_type_derive_the_queue(self):
        assert normalize(request_body(provisionerId="a", workerType="b"))["taskQueueId"] == "a/b"

    def test_task_queue_id_alone_is_accepted(self):
        body = request_body(provisionerId=None, workerType=None, taskQueueId="a/b")
        assert normalize(body)["taskQueueId"] == "a/b"

    def test_all_three_consistent_is_accepted(self):
        assert normalize(request_body(taskQueueId="prov/wt"))["taskQueueId"] == "prov/wt"

    def test_all_three_inconsistent_is_an_input_error(self):
        with pytest.raises(InputError, match='taskQueueId must match "provisionerId/workerType"'):
            normalize(request_body(taskQueueId="prov/other"))

    @pytest.mark.parametrize("lone", [{"provisionerId": "x"}, {"workerType": "x"}])
    def test_task_queue_id_overrides_a_lone_provisioner_or_worker_type(self, lone):
        body = {**request_body(provisionerId=None, workerType=None, taskQueueId="a/b"), **lone}
        d = normalize(body)
        assert d["taskQueueId"] == "a/b"
        view = definitions.public_body(d)
        assert (view["provisionerId"], view["workerType"]) == ("a", "b")

    @pytest.mark.parametrize("fields", [{}, {"provisionerId": "x"}, {"workerType": "x"}])
    def test_incomplete_queue_identity_is_an_input_error(self, fields):
        body = {**request_body(provisionerId=None, workerType=None), **fields}
        with pytest.raises(InputError, match="at least a provisionerId and a workerType or a taskQueueId"):
            normalize(body)

    def test_queue_identity_is_checked_before_the_times(self):
        body = request_body(taskQueueId="prov/other", created=format_ms(NOW - HOUR))
        with pytest.raises(InputError, match="taskQueueId must match"):
            normalize(body)


class TestTimeChecks:
    @pytest.mark.parametrize("fields, message", [
        ({"created": format_ms(NOW - 15 * MINUTE - 1)}, "`created` cannot be in the past (max 15min drift)"),
        ({"created": format_ms(NOW + 15 * MINUTE + 1)}, "`created` cannot be in the future (max 15min drift)"),
        ({"created": format_ms(NOW + 10 * MINUTE), "deadline": format_ms(NOW + 5 * MINUTE)},
         "`deadline` cannot be before `created`"),
        ({"created": format_ms(NOW - 10 * MINUTE), "deadline": format_ms(NOW - 1)},
         "`deadline` cannot be in the past"),
        ({"deadline": format_ms(NOW + 5 * DAY + 15 * MINUTE + 1)},
         "`deadline` cannot be more than 5 days into the future"),
        ({"expires": format_ms(DEADLINE - 1)}, "`expires` cannot be before `deadline`"),
    ])
    def test_each_time_rule_is_an_input_error(self, fields, message):
        with pytest.raises(InputError) as caught:
            normalize(request_body(**fields))
        assert caught.value.message == message
        assert caught.value.code == "InputError"

    @pytest.mark.parametrize("fields", [
        {"created": format_ms(NOW - 15 * MINUTE)},
        {"created": format_ms(NOW + 15 * MINUTE), "deadline": format_ms(NOW + 15 * MINUTE)},
        {"created": format_ms(NOW - 10 * MINUTE), "deadline": format_ms(NOW)},
        {"deadline": format_ms(NOW + 5 * DAY + 15 * MINUTE)},
        {"expires": format_ms(DEADLINE)},
    ])
    def test_boundaries_are_accepted(self, fields):
        normalize(request_body(**fields))

    def test_first_failing_time_rule_wins(self):
        body = request_body(created=format_ms(NOW - HOUR), deadline=format_ms(NOW - 2 * HOUR),
                            expires=format_ms(NOW - 3 * HOUR))
        with pytest.raises(InputError, match="`created` cannot be in the past"):
            normalize(body)

    def test_time_rules_use_the_given_clock(self):
        later = NOW + 2 * HOUR
        body = request_body(NOW)  # created NOW, deadline NOW + 1h: both in the past at `later`
        with pytest.raises(InputError, match="`created` cannot be in the past"):
            normalize(body, now=later)


class TestScopes:
    @pytest.mark.parametrize("scopes", [["**"], ["a:b**"], ["ok", "queue:**"]])
    def test_scope_ending_in_double_star_is_an_input_error(self, scopes):
        with pytest.raises(InputError, match=r"scopes must not end with `\*\*`"):
            normalize(request_body(scopes=scopes))

    @pytest.mark.parametrize("scopes", [["*"], ["a:*"], ["a**b"], []])
    def test_other_scopes_are_accepted(self, scopes):
        assert normalize(request_body(scopes=scopes))["scopes"] == scopes

    def test_time_checks_come_before_the_scope_check(self):
        with pytest.raises(InputError, match="`created` cannot be in the future"):
            normalize(request_body(created=format_ms(NOW + HOUR), scopes=["**"]))


# ====================================================================== the new task

class TestCreation:
    def test_new_task_is_unscheduled_without_runs(self):
        task = make_task(retries=3)
        assert task.state == "unscheduled"
        assert task.runs == [] and task.last_run is None
        assert task.retries_left == 3
        assert not task.is_resolved

    def test_status_has_the_documented_fields(self):
        task_id = new_task_id()
        task = make_task(task_id=task_id, schedulerId="s", projectId="p", retries=2)
        assert task.status() == {
            "taskId": task_id, "provisionerId": "prov", "workerType": "wt", "taskQueueId": "prov/wt",
            "schedulerId": "s", "projectId": "p", "taskGroupId": task_id, "deadline": format_ms(DEADLINE),
            "expires": task.definition["expires"], "retriesLeft": 2, "state": "unscheduled", "runs": [],
        }

    def test_view_is_the_public_definition(self):
        task = make_task()
        assert task.public_body() == {"provisionerId": "prov", "workerType": "wt", **task.definition}

    def test_aggregate_id_is_the_uuid_of_the_slugid(self):
        task_id = new_task_id()
        task = make_task(task_id=task_id)
        assert task.id == task_uuid(task_id) == Task.create_id(task_id)
        assert task_id_of(task.id) == task_id

    def test_status_runs_are_copies(self):
        task = pending_task()
        task.status()["runs"][0]["state"] = "completed"
        assert task.state == "pending"

    def test_missing_run_is_not_found(self):
        task = pending_task()
        for run_id in (-1, 1, 7):
            with pytest.raises(ResourceNotFound, match=f"Run {run_id} not found on task `{task.task_id}`."):
                task.run(run_id)


# ====================================================================== scheduleTask

class TestSchedule:
    def test_schedule_creates_run_zero_pending(self):
        task = make_task(retries=4)
        task.schedule(NOW + SECOND)
        assert task.state == "pending"
        assert task.runs == [{"runId": 0, "state": "pending", "reasonCreated": "scheduled",
                              "scheduled": format_ms(NOW + SECOND)}]
        assert task.retries_left == 4

    def test_schedule_with_runs_changes_nothing(self):
        for task in (pending_task(), running_task()):
            with unchanged(task):
                task.schedule(NOW + SECOND)

    def test_schedule_of_a_resolved_task_changes_nothing(self):
        task = running_task()
        task.report(0, "completed", NOW)
        with unchanged(task):
            task.schedule(NOW + SECOND)

    def test_schedule_at_the_deadline_is_accepted(self):
        task = make_task()
        task.schedule(DEADLINE)
        assert task.state == "pending"

    def test_schedule_past_the_deadline_is_a_conflict(self):
        task = make_task()
        with unchanged(task), pytest.raises(RequestConflict) as caught:
            task.schedule(DEADLINE + 1)
        assert caught.value.message == (f"Task `{task.task_id}` can't be scheduled past its deadline at "
                                        f"{format_ms(DEADLINE)}.")

    def test_schedule_past_the_deadline_is_a_conflict_even_when_resolved(self):
        task = running_task()
        task.report(0, "completed", NOW)
        with pytest.raises(RequestConflict):
            task.schedule(DEADLINE + 1)


# ====================================================================== dependency resolver (schedule_dependent)

class TestScheduleDependent:
    def test_unscheduled_task_is_scheduled(self):
        task = make_task(retries=2)
        assert task.schedule_dependent(NOW + SECOND) is True
        assert task.runs == [{"runId": 0, "state": "pending", "reasonCreated": "scheduled",
                              "scheduled": format_ms(NOW + SECOND)}]
        assert task.retries_left == 2

    def test_task_with_runs_is_left_alone(self):
        task = make_task()
        task.cancel(NOW)
        with unchanged(task):
            assert task.schedule_dependent(NOW) is False

    def test_task_at_or_past_its_deadline_is_left_alone(self):
        task = make_task()
        with unchanged(task):
            assert task.schedule_dependent(DEADLINE) is False
            assert task.schedule_dependent(DEADLINE + 1) is False
        assert task.schedule_dependent(DEADLINE - 1) is True


class TestEverFlags:
    def test_a_new_task_was_never_resolved(self):
        task = running_task()
        assert not task.ever_completed and not task.ever_resolved

    def test_flags_survive_a_rerun(self):
        task = running_task()
        task.report(0, "completed", NOW)
        task.rerun(NOW)
        assert task.state == "pending"
        assert task.ever_completed and task.ever_resolved

    @pytest.mark.parametrize("resolve", [lambda t: t.report(0, "failed", NOW), lambda t: t.cancel(NOW)])
    def test_failure_or_exception_resolves_without_completing(self, resolve):
        task = running_task()
        resolve(task)
        assert task.ever_resolved and not task.ever_completed


# ====================================================================== rerunTask

def resolved_with_runs(n: int, retries: int = 5) -> Task:
    """A task whose `n` runs all failed (each rerun after the last)."""
    task = make_task(retries=retries)
    now = NOW
    task.schedule(now)
    for i in range(n):
        if i:
            task.rerun(now)
        claim_last(task, now)
        task.report(i, "failed", now)
    assert len(task.runs) == n and task.state == "failed"
    return task


class TestRerun:
    def test_rerun_of_an_unscheduled_task_creates_run_zero(self):
        task = make_task(retries=7)
        task.rerun(NOW)
        assert task.runs == [{"runId": 0, "state": "pending", "reasonCreated": "rerun", "scheduled": format_ms(NOW)}]
        assert task.retries_left == 7

    @pytest.mark.parametrize("outcome", ["completed", "failed"])
    def test_rerun_of_a_resolved_task_adds_a_pending_run(self, outcome):
        task = running_task()
        task.report(0, outcome, NOW)
        task.rerun(NOW + SECOND)
        assert task.state == "pending"
        assert task.runs[0]["state"] == outcome
        assert task.runs[1] == {"runId": 1, "state": "pending", "reasonCreated": "rerun",
                                "scheduled": format_ms(NOW + SECOND)}

    def test_rerun_after_an_exception_adds_a_pending_run(self):
        task = make_task()
        task.cancel(NOW)
        task.rerun(NOW)
        assert [r["state"] for r in task.runs] == ["exception", "pending"]

    def test_rerun_resets_retries_left_to_retries(self):
        task = running_task(retries=2)
        task.report_exception(0, "worker-shutdown", NOW)
        claim_last(task, NOW)
        task.report_exception(1, "worker-shutdown", NOW)
        claim_last(task, NOW)
        task.report_exception(2, "worker-shutdown", NOW)
        assert task.retries_left == 0 and task.state == "exception" and len(task.runs) == 3
        task.rerun(NOW)
        assert task.retries_left == 2

    @pytest.mark.parametrize("n", [1, 2, 10, 48, 49])
    def test_rerun_caps_retries_left_so_runs_never_exceed_fifty(self, n):
        task = resolved_with_runs(n, retries=49)
        task.rerun(NOW)
        assert len(task.runs) == n + 1
        assert task.retries_left == min(49, 49 - n)
        assert len(task.runs) + task.retries_left == MAX_RUNS

    def test_rerun_keeps_small_retries(self):
        task = resolved_with_runs(3, retries=5)
        task.rerun(NOW)
        assert task.retries_left == 5

    def test_rerun_with_fifty_runs_is_a_conflict(self):
        task = resolved_with_runs(49, retries=0)
        task.rerun(NOW)
        claim_last(task, NOW)
        task.report(49, "completed", NOW)
        assert len(task.runs) == 50
        with unchanged(task), pytest.raises(RequestConflict) as caught:
            task.rerun(NOW)
        assert caught.value.message == "Maximum number of runs reached (50)."

    def test_rerun_of_a_pending_task_changes_nothing(self):
        task = pending_task()
        with unchanged(task):
            task.rerun(NOW + SECOND)

    def test_rerun_of_a_running_task_changes_nothing(self):
        task = running_task()
        with unchanged(task):
            task.rerun(NOW + SECOND)

    def test_rerun_past_the_deadline_is_a_conflict(self):
        task = running_task()
        task.report(0, "failed", NOW)
        with unchanged(task), pytest.raises(RequestConflict) as caught:
            task.rerun(DEADLINE + 1)
        assert caught.value.message == (f"Task `{task.task_id}` can't be rescheduled past its deadline of "
                                        f"{format_ms(DEADLINE)}.")

    def test_rerun_at_the_deadline_is_accepted(self):
        task = running_task()
        task.report(0, "failed", NOW)
        task.rerun(DEADLINE)
        assert task.state == "pending"


# ====================================================================== cancelTask

class TestCancel:
    def test_cancel_of_an_unscheduled_task_synthesizes_an_exception_run(self):
        task = make_task(retries=3)
        task.cancel(NOW + SECOND)
        at = format_ms(NOW + SECOND)
        assert task.runs == [{"runId": 0, "state": "exception", "reasonCreated": "exception",
                              "reasonResolved": "canceled", "scheduled": at, "resolved": at}]
        assert task.state == "exception" and task.is_resolved
        assert task.retries_left == 3

    def test_cancel_of_a_pending_task_resolves_the_run_without_worker_fields(self):
        task = pending_task()
        task.cancel(NOW + SECOND)
        assert task.runs == [{"runId": 0, "state": "exception", "reasonCreated": "scheduled",
                              "reasonResolved": "canceled", "scheduled": format_ms(NOW),
                              "resolved": format_ms(NOW + SECOND)}]

    def test_cancel_of_a_running_task_keeps_the_worker_fields(self):
        task = running_task(worker=("g1", "w1"))
        task.cancel(NOW + SECOND)
        run = task.runs[0]
        assert (run["state"], run["reasonResolved"]) == ("exception", "canceled")
        assert run["resolved"] == format_ms(NOW + SECOND)
        assert (run["workerGroup"], run["workerId"], run["started"]) == ("g1", "w1", format_ms(NOW))
        assert run["takenUntil"] == format_ms(NOW + CLAIM_TIMEOUT)

    def test_cancel_is_never_retried(self):
        task = running_task(retries=5)
        task.cancel(NOW)
        assert len(task.runs) == 1 and task.retries_left == 5

    @pytest.mark.parametrize("outcome", ["completed", "failed"])
    def test_cancel_of_a_resolved_task_changes_nothing(self, outcome):
        task = running_task()
        task.report(0, outcome, NOW)
        with unchanged(task):
            task.cancel(NOW + SECOND)

    def test_cancel_of_a_task_resolved_by_another_exception_changes_nothing(self):
        task = running_task(retries=0)
        task.report_exception(0, "internal-error", NOW)
        with unchanged(task):
            task.cancel(NOW)
        assert task.runs[0]["reasonResolved"] == "internal-error"

    def test_cancel_twice_keeps_the_single_synthesized_run(self):
        task = make_task()
        task.cancel(NOW)
        with unchanged(task):
            task.cancel(NOW + SECOND)
        assert len(task.runs) == 1

    def test_cancel_past_the_deadline_is_a_conflict(self):
        task = pending_task()
        with unchanged(task), pytest.raises(RequestConflict) as caught:
            task.cancel(DEADLINE + 1)
        assert caught.value.message == (f"Task `{task.task_id}` can't be canceled past its deadline of "
                                        f"{format_ms(DEADLINE)}.")

    def test_cancel_at_the_deadline_is_accepted(self):
        task = pending_task()
        task.cancel(DEADLINE)
        assert task.state == "exception"


# ====================================================================== claimWork (Task.claim_work)

class TestClaimWork:
    def test_claim_of_the_pending_run_starts_it(self):
        task = pending_task()
        assert task.claim_work(0, "g", "w", NOW + SECOND, NOW + SECOND + CLAIM_TIMEOUT) is True
        assert task.state == "running"
        assert task.runs[0] == {"runId": 0, "state": "running", "reasonCreated": "scheduled",
                                "scheduled": format_ms(NOW), "workerGroup": "g", "workerId": "w",
                                "takenUntil": format_ms(NOW + SECOND + CLAIM_TIMEOUT),
                                "started": format_ms(NOW + SECOND)}
        assert task.claimed_at == NOW + SECOND

    def test_claim_of_an_unscheduled_task_is_refused(self):
        task = make_task()
        with unchanged(task):
            assert task.claim_work(0, "g", "w", NOW, NOW + CLAIM_TIMEOUT) is False

    def test_claim_of_a_running_run_is_refused(self):
        task = running_task(worker=("g", "w"))
        with unchanged(task):
            assert task.claim_work(0, "g", "w", NOW, NOW + CLAIM_TIMEOUT) is False
            assert task.claim_work(0, "g2", "w2", NOW, NOW + CLAIM_TIMEOUT) is False

    def test_claim_of_a_stale_run_id_is_refused(self):
        task = running_task()
        task.report(0, "failed", NOW)
        task.rerun(NOW)
        with unchanged(task):
            assert task.claim_work(0, "g", "w", NOW, NOW + CLAIM_TIMEOUT) is False
            assert task.claim_work(2, "g", "w", NOW, NOW + CLAIM_TIMEOUT) is False
        assert task.claim_work(1, "g", "w", NOW, NOW + CLAIM_TIMEOUT) is True

    def test_claim_of_a_canceled_run_is_refused(self):
        task = pending_task()
        task.cancel(NOW)
        with unchanged(task):
            assert task.claim_work(0, "g", "w", NOW, NOW + CLAIM_TIMEOUT) is False

    def test_claim_at_or_past_the_deadline_is_refused(self):
        task = pending_task()
        with unchanged(task):
            assert task.claim_work(0, "g", "w", DEADLINE, DEADLINE + CLAIM_TIMEOUT) is False
            assert task.claim_work(0, "g", "w", DEADLINE + 1, DEADLINE + CLAIM_TIMEOUT) is False
        assert task.claim_work(0, "g", "w", DEADLINE - 1, DEADLINE + CLAIM_TIMEOUT) is True


# ====================================================================== claimTask (Task.claim_task)

class TestClaimTask:
    def test_claim_task_of_the_pending_run_starts_it(self):
        task = pending_task()
        task.claim_task(0, "g", "w", NOW, NOW + CLAIM_TIMEOUT)
        assert task.state == "running"
        assert (task.runs[0]["workerGroup"], task.runs[0]["workerId"]) == ("g", "w")

    def test_claim_task_by_the_same_worker_again_is_accepted_without_change(self):
        task = pending_task()
        task.claim_task(0, "g", "w", NOW, NOW + CLAIM_TIMEOUT)
        with unchanged(task):
            task.claim_task(0, "g", "w", NOW + MINUTE, NOW + MINUTE + CLAIM_TIMEOUT)
        assert task.runs[0]["takenUntil"] == format_ms(NOW + CLAIM_TIMEOUT)
        assert task.runs[0]["started"] == format_ms(NOW)

    @pytest.mark.parametrize("other", [("g", "other"), ("other", "w"), ("x", "y")])
    def test_claim_task_by_another_worker_is_a_conflict(self, other):
        task = pending_task()
        task.claim_task(0, "g", "w", NOW, NOW + CLAIM_TIMEOUT)
        with unchanged(task), pytest.raises(RequestConflict) as caught:
            task.claim_task(0, *other, NOW, NOW + CLAIM_TIMEOUT)
        assert caught.value.message == "Run 0 was already claimed by another worker."
        assert caught.value.code == "RequestConflict"

    def test_claim_task_of_a_resolved_run_is_a_conflict_even_for_its_worker(self):
        task = running_task(worker=("g", "w"))
        task.report(0, "completed", NOW)
        with unchanged(task), pytest.raises(RequestConflict, match="already claimed by another worker"):
            task.claim_task(0, "g", "w", NOW, NOW + CLAIM_TIMEOUT)

    def test_claim_task_of_a_run_that_is_not_the_last_is_a_conflict(self):
        task = running_task(worker=("g", "w"))
        task.report(0, "failed", NOW)
        task.rerun(NOW)
        with unchanged(task), pytest.raises(RequestConflict):
            task.claim_task(0, "g", "w", NOW, NOW + CLAIM_TIMEOUT)

    def test_claim_task_of_a_canceled_run_is_a_conflict(self):
        task = pending_task()
        task.cancel(NOW)
        with pytest.raises(RequestConflict):
            task.claim_task(0, "g", "w", NOW, NOW + CLAIM_TIMEOUT)

    def test_claim_task_repeat_is_refused_when_the_run_was_claimed_through_claim_work(self):
        # §7.18: only a claimTask claim may be handed out again to its worker
        task = pending_task()
        assert task.claim_work(0, "g", "w", NOW, NOW + CLAIM_TIMEOUT)
        with unchanged(task), pytest.raises(RequestConflict, match="Run 0 was already claimed by another worker."):
            task.claim_task(0, "g", "w", NOW, NOW + CLAIM_TIMEOUT)

    def test_claim_task_repeat_is_refused_for_a_later_claim_work_run(self):
        task = pending_task(retries=1)
        task.claim_task(0, "g", "w", NOW, NOW + CLAIM_TIMEOUT)
        task.report_exception(0, "worker-shutdown", NOW)
        assert task.claim_work(1, "g", "w", NOW, NOW + CLAIM_TIMEOUT)
        with pytest.raises(RequestConflict):
            task.claim_task(1, "g", "w", NOW, NOW + CLAIM_TIMEOUT)

    def test_claim_task_of_a_missing_run_is_not_found(self):
        task = pending_task()
        with unchanged(task), pytest.raises(ResourceNotFound) as caught:
            task.claim_task(1, "g", "w", NOW, NOW + CLAIM_TIMEOUT)
        assert caught.value.message == f"Run 1 not found on task `{task.task_id}`."

    def test_claim_task_of_an_unscheduled_task_is_not_found(self):
        with pytest.raises(ResourceNotFound):
            make_task().claim_task(0, "g", "w", NOW, NOW + CLAIM_TIMEOUT)

    @pytest.mark.parametrize("now", [DEADLINE, DEADLINE + 1])
    def test_claim_task_at_or_past_the_deadline_is_a_conflict(self, now):
        task = pending_task()
        with unchanged(task), pytest.raises(RequestConflict) as caught:
            task.claim_task(0, "g", "w", now, now + CLAIM_TIMEOUT)
        assert caught.value.message == (f"Task `{task.task_id}` can't be claimed past its deadline of "
                                        f"{format_ms(DEADLINE)}.")

    def test_claim_task_deadline_is_checked_before_the_run(self):
        # §7.18: deadline ⇒ 409 comes before the claim attempt's 404 for a missing run
        with pytest.raises(RequestConflict):
            pending_task().claim_task(5, "g", "w", DEADLINE, DEADLINE + CLAIM_TIMEOUT)


# ====================================================================== reclaimTask

class TestReclaim:
    def test_reclaim_extends_taken_until_and_keeps_started(self):
        task = running_task()
        task.reclaim(0, NOW + MINUTE, NOW + MINUTE + CLAIM_TIMEOUT)
        run = task.runs[0]
        assert run["takenUntil"] == format_ms(NOW + MINUTE + CLAIM_TIMEOUT)
        assert run["started"] == format_ms(NOW)
        assert run["state"] == "running"
        assert task.claimed_at == NOW + MINUTE

    def test_reclaim_of_a_pending_run_is_a_conflict(self):
        task = pending_task()
        with unchanged(task), pytest.raises(RequestConflict) as caught:
            task.reclaim(0, NOW, NOW + CLAIM_TIMEOUT)
        assert caught.value.message == f"Run 0 on task `{task.task_id}` is resolved or not running."

    @pytest.mark.parametrize("resolve", [
        lambda t: t.report(0, "completed", NOW),
        lambda t: t.report(0, "failed", NOW),
        lambda t: t.report_exception(0, "internal-error", NOW),
        lambda t: t.cancel(NOW),
    ])
    def test_reclaim_of_a_resolved_run_is_a_conflict(self, resolve):
        task = running_task()
        resolve(task)
        with unchanged(task), pytest.raises(RequestConflict, match="is resolved or not running"):
            task.reclaim(0, NOW, NOW + CLAIM_TIMEOUT)

    def test_reclaim_of_a_run_that_is_not_the_last_is_a_conflict(self):
        task = running_task()
        task.report_exception(0, "worker-shutdown", NOW)
        claim_last(task, NOW)
        with unchanged(task), pytest.raises(RequestConflict):
            task.reclaim(0, NOW, NOW + CLAIM_TIMEOUT)
        task.reclaim(1, NOW, NOW + 2 * CLAIM_TIMEOUT)

    def test_reclaim_of_a_missing_run_is_not_found(self):
        task = running_task()
        with pytest.raises(ResourceNotFound, match="Run 3 not found"):
            task.reclaim(3, NOW, NOW + CLAIM_TIMEOUT)

    @pytest.mark.parametrize("now", [DEADLINE, DEADLINE + 1])
    def test_reclaim_at_or_past_the_deadline_is_a_conflict(self, now):
        task = running_task()
        with unchanged(task), pytest.raises(RequestConflict, match="can't be reclaimed past its deadline"):
            task.reclaim(0, now, now + CLAIM_TIMEOUT)

    def test_reclaim_of_a_missing_run_past_the_deadline_is_not_found(self):
        # §7.19: 404 run comes before the deadline's 409
        with pytest.raises(ResourceNotFound):
            running_task().reclaim(3, DEADLINE + 1, DEADLINE + CLAIM_TIMEOUT)


# ====================================================================== reportCompleted / reportFailed

class TestReport:
    @pytest.mark.parametrize("outcome", ["completed", "failed"])
    def test_report_resolves_the_running_run(self, outcome):
        task = running_task(retries=5)
        task.report(0, outcome, NOW + MINUTE)
        run = task.runs[0]
        assert (run["state"], run["reasonResolved"], run["resolved"]) == (outcome, outcome, format_ms(NOW + MINUTE))
        assert (run["workerGroup"], run["workerId"], run["started"]) == ("wg", "wid", format_ms(NOW))
        assert task.state == outcome and task.is_resolved
        assert len(task.runs) == 1 and task.retries_left == 5  # never retried

    def test_report_completed_twice_is_accepted(self):
        task = running_task()
        task.report(0, "completed", NOW)
        with unchanged(task):
            task.report(0, "completed", NOW + MINUTE)
        assert task.runs[0]["resolved"] == format_ms(NOW)

    def test_report_failed_twice_is_accepted(self):
        task = running_task()
        task.report(0, "failed", NOW)
        with unchanged(task):
            task.report(0, "failed", NOW + MINUTE)

    @pytest.mark.parametrize("first, second", [("completed", "failed"), ("failed", "completed")])
    def test_report_of_the_other_outcome_after_resolution_is_a_conflict(self, first, second):
        task = running_task()
        task.report(0, first, NOW)
        with unchanged(task), pytest.raises(RequestConflict) as caught:
            task.report(0, second, NOW)
        assert caught.value.message == f"Run 0 of task `{task.task_id}` is not running or {second}."

    @pytest.mark.parametrize("outcome", ["completed", "failed"])
    def test_report_of_a_pending_run_is_a_conflict(self, outcome):
        task = pending_task()
        with unchanged(task), pytest.raises(RequestConflict, match=f"is not running or {outcome}"):
            task.report(0, outcome, NOW)

    @pytest.mark.parametrize("outcome", ["completed", "failed"])
    def test_report_of_an_exception_run_is_a_conflict(self, outcome):
        task = running_task()
        task.cancel(NOW)
        with unchanged(task), pytest.raises(RequestConflict):
            task.report(0, outcome, NOW)

    def test_report_of_a_missing_run_is_not_found(self):
        task = running_task()
        with pytest.raises(ResourceNotFound, match="Run 1 not found"):
            task.report(1, "completed", NOW)
        with pytest.raises(ResourceNotFound):
            make_task().report(0, "completed", NOW)

    def test_report_repeat_on_a_run_that_is_no_longer_last_is_a_conflict(self):
        task = running_task()
        task.report(0, "completed", NOW)
        task.rerun(NOW)
        with unchanged(task), pytest.raises(RequestConflict) as caught:
            task.report(0, "completed", NOW)
        assert caught.value.message == f"Run 0 on task `{task.task_id}` is resolved or not running."

    def test_report_has_no_deadline_check(self):
        task = running_task()
        task.report(0, "completed", DEADLINE + MINUTE)
        assert task.state == "completed"


# ====================================================================== reportException

class TestReportException:
    @pytest.mark.parametrize("reason, created", list(RETRY_REASONS.items()))
    def test_retry_reason_adds_a_pending_run_while_retries_are_left(self, reason, created):
        task = running_task(retries=2)
        task.report_exception(0, reason, NOW + MINUTE)
        assert task.runs[0]["state"] == "exception" and task.runs[0]["reasonResolved"] == reason
        assert task.runs[0]["resolved"] == format_ms(NOW + MINUTE)
        assert task.runs[1] == {"runId": 1, "state": "pending", "reasonCreated": created,
                                "scheduled": format_ms(NOW + MINUTE)}
        assert task.state == "pending" and task.retries_left == 1

    @pytest.mark.parametrize("reason", list(RETRY_REASONS))
    def test_a_retried_resolution_does_not_resolve_the_task_for_dependents(self, reason):
        task = running_task(retries=1)
        task.report_exception(0, reason, NOW)
        assert not task.ever_resolved  # run 0 is resolved, but the retry is the task's next attempt
        claim_last(task, NOW)
        task.report_exception(1, reason, NOW)
        assert task.ever_resolved and not task.ever_completed

    def test_a_resolution_followed_by_a_rerun_still_counts(self):
        task = running_task(retries=1)
        task.report(0, "failed", NOW)
        task.rerun(NOW)
        assert task.ever_resolved

    @pytest.mark.parametrize("reason", list(RETRY_REASONS))
    def test_retry_reason_is_final_when_no_retries_are_left(self, reason):
        task = running_task(retries=1)
        task.report_exception(0, reason, NOW)
        claim_last(task, NOW)
        task.report_exception(1, reason, NOW)
        assert len(task.runs) == 2 and task.state == "exception" and task.retries_left == 0

    @pytest.mark.parametrize("reason", FINAL_REASONS)
    def test_other_reasons_are_never_retried(self, reason):
        task = running_task(retries=5)
        task.report_exception(0, reason, NOW)
        assert len(task.runs) == 1
        assert (task.state, task.runs[0]["reasonResolved"]) == ("exception", reason)
        assert task.retries_left == 5

    @pytest.mark.parametrize("reason", ALL_REASONS)
    def test_report_exception_twice_with_the_same_reason_is_accepted(self, reason):
        task = running_task(retries=3)
        task.report_exception(0, reason, NOW)
        with unchanged(task):
            task.report_exception(0, reason, NOW + MINUTE)

    @pytest.mark.parametrize("reason", ALL_REASONS)
    def test_report_exception_with_a_different_reason_afterwards_is_a_conflict(self, reason):
        task = running_task(retries=3)
        task.report_exception(0, reason, NOW)
        other = next(r for r in ALL_REASONS if r != reason)
        with unchanged(task), pytest.raises(RequestConflict) as caught:
            task.report_exception(0, other, NOW)
        assert caught.value.message == f"Run 0 on task `{task.task_id}` is resolved or not running."

    def test_report_exception_repeat_is_accepted_while_the_retry_run_is_running(self):
        task = running_task(retries=3)
        task.report_exception(0, "worker-shutdown", NOW)
        claim_last(task, NOW)
        with unchanged(task):
            task.report_exception(0, "worker-shutdown", NOW)

    def test_report_exception_repeat_is_a_conflict_once_two_runs_follow(self):
        task = running_task(retries=3)
        task.report_exception(0, "worker-shutdown", NOW)
        claim_last(task, NOW)
        task.report_exception(1, "worker-shutdown", NOW)
        assert len(task.runs) == 3
        with unchanged(task), pytest.raises(RequestConflict):
            task.report_exception(0, "worker-shutdown", NOW)
        task.report_exception(1, "worker-shutdown", NOW)  # run 1 is followed by one run only

    def test_report_exception_of_a_pending_run_is_a_conflict(self):
        task = pending_task()
        with unchanged(task), pytest.raises(RequestConflict, match="is resolved or not running"):
            task.report_exception(0, "internal-error", NOW)

    @pytest.mark.parametrize("outcome", ["completed", "failed"])
    def test_report_exception_of_a_reported_run_is_a_conflict(self, outcome):
        task = running_task()
        task.report(0, outcome, NOW)
        with unchanged(task), pytest.raises(RequestConflict):
            task.report_exception(0, "internal-error", NOW)

    def test_report_exception_of_a_canceled_run_is_a_conflict(self):
        task = running_task()
        task.cancel(NOW)
        with unchanged(task), pytest.raises(RequestConflict):
            task.report_exception(0, "worker-shutdown", NOW)

    def test_report_exception_of_a_missing_run_is_not_found(self):
        with pytest.raises(ResourceNotFound, match="Run 2 not found"):
            running_task().report_exception(2, "internal-error", NOW)

    def test_report_exception_has_no_deadline_check(self):
        task = running_task()
        task.report_exception(0, "internal-error", DEADLINE + MINUTE)
        assert task.state == "exception"

    def test_retries_are_consumed_one_per_retry_until_final(self):
        task = running_task(retries=3)
        for run_id in range(3):
            task.report_exception(run_id, "intermittent-task", NOW)
            assert task.retries_left == 2 - run_id
            claim_last(task, NOW)
        task.report_exception(3, "intermittent-task", NOW)
        assert len(task.runs) == 4 and task.state == "exception"
        assert [r["reasonCreated"] for r in task.runs] == ["scheduled", "task-retry", "task-retry", "task-retry"]


# ====================================================================== claim expiry (claim resolver)

class TestExpireClaim:
    def test_expired_claim_is_retried_while_retries_are_left(self):
        task = running_task(retries=1)
        taken_until = NOW + CLAIM_TIMEOUT
        assert task.expire_claim(0, taken_until, taken_until + SECOND) is True
        assert task.runs[0]["state"] == "exception"
        assert task.runs[0]["reasonResolved"] == "claim-expired"
        assert task.runs[0]["resolved"] == format_ms(taken_until + SECOND)
        assert task.runs[1] == {"runId": 1, "state": "pending", "reasonCreated": "retry",
                                "scheduled": format_ms(taken_until + SECOND)}
        assert task.retries_left == 0

    def test_expired_claim_is_final_without_retries_left(self):
        task = running_task(retries=0)
        assert task.expire_claim(0, NOW + CLAIM_TIMEOUT, NOW + CLAIM_TIMEOUT) is True
        assert len(task.runs) == 1 and task.state == "exception"
        assert task.runs[0]["reasonResolved"] == "claim-expired"

    def test_claim_is_not_expired_before_taken_until(self):
        task = running_task()
        with unchanged(task):
            assert task.expire_claim(0, NOW + CLAIM_TIMEOUT, NOW + CLAIM_TIMEOUT - 1) is False

    def test_claim_is_not_expired_after_a_reclaim(self):
        task = running_task()
        old = NOW + CLAIM_TIMEOUT
        task.reclaim(0, NOW + MINUTE, NOW + MINUTE + CLAIM_TIMEOUT)
        with unchanged(task):
            assert task.expire_claim(0, old, old + SECOND) is False
        new = NOW + MINUTE + CLAIM_TIMEOUT
        assert task.expire_claim(0, new, new) is True

    def test_claim_is_not_expired_at_or_past_the_deadline(self):
        # the deadline resolver wins
        task = running_task(deadline=format_ms(NOW + 10 * MINUTE))
        deadline = NOW + 10 * MINUTE
        with unchanged(task):
            assert task.expire_claim(0, NOW + CLAIM_TIMEOUT, deadline + CLAIM_TIMEOUT) is False
        task = running_task(deadline=format_ms(NOW + 10 * MINUTE))
        task.reclaim(0, NOW, NOW + MINUTE)
        with unchanged(task):
            assert task.expire_claim(0, NOW + MINUTE, deadline) is False
        assert task.expire_claim(0, NOW + MINUTE, deadline - 1) is True

    def test_resolved_or_stale_claims_are_not_expired(self):
        task = running_task()
        task.report(0, "completed", NOW)
        with unchanged(task):
            assert task.expire_claim(0, NOW + CLAIM_TIMEOUT, NOW + CLAIM_TIMEOUT) is False
        task = pending_task()
        with unchanged(task):
            assert task.expire_claim(0, NOW + CLAIM_TIMEOUT, NOW + CLAIM_TIMEOUT) is False
        task = running_task()
        with unchanged(task):
            assert task.expire_claim(1, NOW + CLAIM_TIMEOUT, NOW + CLAIM_TIMEOUT) is False
        assert make_task().expire_claim(0, NOW, NOW + HOUR) is False


# ====================================================================== deadline (deadline resolver)

class TestExceedDeadline:
    def test_nothing_happens_before_the_deadline(self):
        for task in (make_task(), pending_task(), running_task()):
            with unchanged(task):
                assert task.exceed_deadline(DEADLINE - 1) is False

    def test_unscheduled_task_gets_a_synthesized_exception_run(self):
        task = make_task()
        assert task.exceed_deadline(DEADLINE) is True
        at = format_ms(DEADLINE)
        assert task.runs == [{"runId": 0, "state": "exception", "reasonCreated": "exception",
                              "reasonResolved": "deadline-exceeded", "scheduled": at, "resolved": at}]

    def test_pending_run_is_resolved_as_deadline_exceeded(self):
        task = pending_task()
        assert task.exceed_deadline(DEADLINE + MINUTE) is True
        assert (task.runs[0]["state"], task.runs[0]["reasonResolved"]) == ("exception", "deadline-exceeded")
        assert "workerId" not in task.runs[0]

    def test_running_run_is_resolved_as_deadline_exceeded_without_retry(self):
        task = running_task(retries=5)
        assert task.exceed_deadline(DEADLINE + MINUTE) is True
        run = task.runs[0]
        assert (run["state"], run["reasonResolved"], run["workerId"]) == ("exception", "deadline-exceeded", "wid")
        assert len(task.runs) == 1 and task.retries_left == 5

    @pytest.mark.parametrize("resolve", [
        lambda t: t.report(0, "completed", NOW),
        lambda t: t.report(0, "failed", NOW),
        lambda t: t.cancel(NOW),
    ])
    def test_resolved_task_is_left_alone(self, resolve):
        task = running_task()
        resolve(task)
        with unchanged(task):
            assert task.exceed_deadline(DEADLINE + MINUTE) is False

    def test_after_the_deadline_everything_but_reports_is_refused(self):
        task = running_task()
        task.exceed_deadline(DEADLINE)
        later = DEADLINE + 1
        for command in (lambda: task.schedule(later), lambda: task.rerun(later), lambda: task.cancel(later),
                        lambda: task.claim_task(0, "wg", "wid", later, later),
                        lambda: task.reclaim(0, later, later)):
            with unchanged(task), pytest.raises(RequestConflict):
                command()
        with unchanged(task), pytest.raises(RequestConflict):
            task.report(0, "completed", later)


# ====================================================================== replay

def busy_task() -> Task:
    """A task taken through most transitions."""
    task = make_task(retries=2, priority="high")
    task.schedule(NOW)
    task.claim_task(0, "g", "w", NOW, NOW + CLAIM_TIMEOUT)
    task.reclaim(0, NOW + MINUTE, NOW + MINUTE + CLAIM_TIMEOUT)
    task.report_exception(0, "worker-shutdown", NOW + 2 * MINUTE)
    task.claim_work(1, "g", "w2", NOW + 3 * MINUTE, NOW + 3 * MINUTE + CLAIM_TIMEOUT)
    task.expire_claim(1, NOW + 3 * MINUTE + CLAIM_TIMEOUT, NOW + 3 * MINUTE + CLAIM_TIMEOUT)
    task.claim_work(2, "g", "w3", NOW + 30 * MINUTE, NOW + 50 * MINUTE)
    task.report(2, "failed", NOW + 31 * MINUTE)
    task.rerun(NOW + 32 * MINUTE)
    task.cancel(NOW + 33 * MINUTE)
    task.rerun(NOW + 34 * MINUTE)
    assert len(task.runs) == 5
    return task


class TestReplay:
    def test_replaying_the_events_gives_an_equal_task(self):
        task = busy_task()
        events = task.collect_events()
        assert [type(e).__name__ for e in events][:3] == ["Defined", "RunAdded", "RunClaimed"]
        rebuilt = None
        for event in events:
            rebuilt = event.mutate(rebuilt)
        assert rebuilt.status() == task.status()
        assert rebuilt.definition == task.definition
        assert rebuilt.claimed_at == task.claimed_at
        assert rebuilt.version == task.version

    def test_saving_and_getting_from_an_application_gives_an_equal_status(self):
        app = Application()
        task = busy_task()
        app.save(task)
        stored = app.repository.get(task.id)
        assert stored.status() == task.status()
        assert stored.public_body() == task.public_body()
        stored.claim_work(4, "g", "w", NOW + 40 * MINUTE, NOW + 45 * MINUTE)
        app.save(stored)
        again = app.repository.get(task.id)
        assert again.status() == stored.status()
        assert again.state == "running"
        assert again.claimed_at == NOW + 40 * MINUTE
        assert app.repository.get(task.id, version=1).state == "unscheduled"

    def test_how_a_run_was_claimed_survives_replay(self):
        app = Application()
        by_claim_task, by_claim_work = pending_task(), pending_task()
        by_claim_task.claim_task(0, "g", "w", NOW, NOW + CLAIM_TIMEOUT)
        by_claim_work.claim_work(0, "g", "w", NOW, NOW + CLAIM_TIMEOUT)
        app.save(by_claim_task, by_claim_work)
        app.repository.get(by_claim_task.id).claim_task(0, "g", "w", NOW, NOW + CLAIM_TIMEOUT)
        with pytest.raises(RequestConflict):
            app.repository.get(by_claim_work.id).claim_task(0, "g", "w", NOW, NOW + CLAIM_TIMEOUT)
