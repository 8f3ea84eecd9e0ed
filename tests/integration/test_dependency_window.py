"""createTask against a dependency resolving at the same time, with the
window made explicit: the dependency resolves (and the dependency-resolver
looks for its dependents) after createTask read the dependency's state and
before createTask committed. The new task must still end up pending.

Also the one definition of "a dependency is satisfied", shared by createTask
and the dependency-resolver: a dependency that ever completed (or, for
all-resolved, ever resolved) stays satisfied, also while it is rerun."""

import uuid

from taskjournal.services.dependency_resolver.resolver import on_task_resolved
from taskjournal.shared.domain.definition import normalize
from taskjournal.shared.domain.ids import task_id_of
from taskjournal.shared.domain.time import format_ms, now_ms

HOUR = 3_600_000


def _definition(task_id: str, dependencies=(), requires="all-completed", retries: int = 5) -> dict:
    now = now_ms()
    body = {"taskQueueId": "window/w", "taskGroupId": task_id, "dependencies": list(dependencies),
            "requires": requires, "retries": retries, "created": format_ms(now), "deadline": format_ms(now + HOUR), "payload": {},
            "metadata": {"name": "n", "description": "d", "owner": "o", "source": "https://example.com"}}
    return normalize(task_id, body, now)


def _create(journal, dependencies=(), requires="all-completed", retries: int = 5):
    task_id = task_id_of(uuid.uuid4())
    return journal.create_task(task_id, _definition(task_id, dependencies, requires, retries), now_ms())


def _resolve(journal, task_id: str, run_id: int = 0, outcome: str = "completed") -> dict:
    """Claim and resolve a run; returns the internal event the relay would deliver."""
    now = now_ms()
    journal.claim_task(task_id, run_id, "wg", "w", now, now + HOUR)
    journal.report(task_id, run_id, outcome, now)
    return _event(journal, task_id)


def _event(journal, task_id: str) -> dict:
    """The internal Task.RunResolved event of the task's latest resolution."""
    task = journal.task(task_id)
    return {"id": task_id, "version": task.version, "taskGroupId": task.definition["taskGroupId"],
            "position": journal.recorder.max_notification_id()}


def test_dependency_resolving_between_the_check_and_the_commit_still_schedules(journal, monkeypatch):
    dependency = _create(journal).task_id
    read = journal.views.tasks_by_id
    found_by_resolver = []

    def read_then_resolve(task_ids, columns):
        rows = read(task_ids, columns)  # createTask has seen the dependency unresolved...
        if not found_by_resolver:  # ...when it resolves and the resolver runs, before createTask commits
            found_by_resolver.append(journal.schedule_ready_dependents(_resolve(journal, dependency)["id"], now_ms()))
        return rows

    monkeypatch.setattr(journal.views, "tasks_by_id", read_then_resolve)
    created = _create(journal, [dependency])
    assert found_by_resolver == [[]]  # the resolver did run inside the window and found nothing
    assert created.state == "pending"
    assert journal.task(created.task_id).state == "pending"
    assert [r["reasonCreated"] for r in journal.task(created.task_id).runs] == ["scheduled"]


def test_a_completed_dependency_stays_satisfied_while_rerun_for_both_paths(journal):
    rerun, other = _create(journal).task_id, _create(journal).task_id
    _resolve(journal, rerun)
    journal.rerun_task(rerun, now_ms())
    assert journal.task(rerun).state == "pending"

    # createTask: the dependency completed once, so it is satisfied.
    assert _create(journal, [rerun]).state == "pending"

    # dependency-resolver: a dependent waiting on `other` too is scheduled
    # when `other` completes, though `rerun` is pending again.
    waiting = _create(journal, [rerun, other])
    assert waiting.state == "unscheduled"
    on_task_resolved(journal, _resolve(journal, other))
    assert journal.task(waiting.task_id).state == "pending"


def test_a_failed_then_rerun_dependency_satisfies_all_resolved_only(journal):
    dependency = _create(journal).task_id
    _resolve(journal, dependency, outcome="failed")
    journal.rerun_task(dependency, now_ms())
    assert _create(journal, [dependency], "all-resolved").state == "pending"
    strict = _create(journal, [dependency], "all-completed")
    assert strict.state == "unscheduled"
    on_task_resolved(journal, _resolve(journal, dependency, run_id=1))
    assert journal.task(strict.task_id).state == "pending"



def test_a_resolution_retried_at_once_does_not_schedule_all_resolved_dependents(journal):
    dependency = _create(journal, retries=1).task_id
    dependent = _create(journal, [dependency], "all-resolved")
    now = now_ms()
    journal.claim_task(dependency, 0, "wg", "w", now, now + 1)
    assert journal.expire_claim(dependency, 0, now + 1, now + 2)  # claim-expired, retried: run 1 is pending
    on_task_resolved(journal, _event(journal, dependency))
    assert journal.task(dependent.task_id).state == "unscheduled"
    assert _create(journal, [dependency], "all-resolved").state == "unscheduled"  # createTask agrees

    on_task_resolved(journal, _resolve(journal, dependency, run_id=1, outcome="failed"))
    assert journal.task(dependent.task_id).state == "pending"
