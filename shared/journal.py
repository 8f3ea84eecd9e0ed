"""The Journal: the event-sourced application every service shares. Each
command loads aggregates, lets them decide, and appends their events with
optimistic concurrency, retrying on conflict; the inline projection is saved
in the same transaction (ADR 0002, 0003)."""

import json
from collections.abc import Callable, Iterable, Mapping
from itertools import groupby
from typing import Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, RecordConflictError
from eventsourcing.utils import Environment

from taskjournal.shared import actor
from taskjournal.shared.auth.credentials import slug_id
from taskjournal.shared.domain.artifact import DEFAULT_CONTENT_TYPE, Artifact, details_for
from taskjournal.shared.domain.errors import InputError, RequestConflict, ResourceNotFound
from taskjournal.shared.domain.ids import artifact_uuid, group_uuid, task_uuid
from taskjournal.shared.domain.object import UPLOAD_LIFETIME_MS, Object, already_exists, object_uuid
from taskjournal.shared.domain.task import Task
from taskjournal.shared.domain.task_group import TaskGroup, admits_unchanged, group_expiry
from taskjournal.shared.domain.time import format_ms, parse_ms
from taskjournal.shared.domain.worker import TaskQueue, Worker, queue_uuid, worker_uuid
from taskjournal.shared.store import Store, open_store
from taskjournal.shared.store.events import stamp
from taskjournal.shared.store.group_commit import GroupCommit
from taskjournal.shared.store.projection import Changes, changes_for

MAX_ATTEMPTS = 20
NOT_CREATED = "Task `{task_id}` not found. Are you sure it was created?"
NOT_EXISTING = "taskId `{task_id}` not found. Are you sure it exists?"

# A caller's check on the aggregate a command loaded: raises (e.g. 403) to
# stop the command before it decides anything.
Authorize = Callable[[object], None] | None


class CommitListener(Protocol):
    """Told about every commit, on the committing thread (see bootstrap.Wakeups)."""

    def saved(self) -> None:
        """New events are in the log (an in-process relay follows it without polling)."""

    def pending(self, task_queue_ids: Iterable[str]) -> None:
        """These task queues got pending work (long-polling claimWork calls wake up)."""


class NoListener:
    def saved(self) -> None:
        pass

    def pending(self, task_queue_ids: Iterable[str]) -> None:
        pass


class Journal(Application):
    name = "taskjournal"
    is_snapshotting_enabled = False

    def __init__(self, env: dict, store: Store, listener: CommitListener | None = None):
        self.store = store  # the event store's infrastructure and the read models (shared/store/port.py)
        super().__init__(env)
        self.views = store  # the read side, under the name callers use
        self.listener: CommitListener = listener or NoListener()
        self.group_commit = GroupCommit(self._commit)

    # ------------------------------------------------------------ persistence
    def construct_env(self, name: str, env: Mapping[str, str] | None = None) -> Environment:
        """Our settings only: never os.environ (eventsourcing would merge it and
        prefer TASKJOURNAL_* keys from it, e.g. TASKJOURNAL_POSTGRES_ENABLE_DB_FUNCTIONS)."""
        return Environment(name, dict(env or {}))

    def construct_factory(self, env: Environment):
        return self.store.factory

    def construct_recorder(self):
        return self.store.recorder

    def construct_mapper(self):
        return self.store.mapper  # writes and reads the actor (shared/store/events.py)

    def events_after(self, position: int, limit: int) -> list[tuple[int, object]]:
        """Up to `limit` (log position, domain event) pairs after `position`, in log order."""
        return [(n.id, self.mapper.to_domain_event(n)) for n in self.store.notifications(position + 1, limit)]

    def forget(self, aggregate_id: UUID) -> None:
        """Drop a deleted aggregate from the cache."""
        cache = self.repository.cache
        if cache is not None:
            try:
                cache.get(aggregate_id, evict=True)
            except KeyError:
                pass

    def save(self, *aggregates) -> None:  # type: ignore[override]  # returns nothing: the commit may be shared
        """Append the aggregates' new events (and their read-model rows) in one
        transaction, shared with concurrent saves of other threads. The new
        events record the current actor (shared/actor.py) here, on the thread
        of the command that decided them."""
        who = actor.current()
        for aggregate in aggregates:
            stamp(aggregate.pending_events, who)
        # The read-model rows are worked out here, not in the shared commit,
        # which one thread at a time runs for all.
        new = {a.id for a in aggregates if any(e.originator_version == 1 for e in a.pending_events)}
        self.group_commit.save(list(aggregates), changes_for(aggregates, new))

    def _commit(self, aggregates: list, each: list[Changes]) -> None:
        changes = Changes.joined(each)
        super().save(*aggregates, projection=changes)
        self.listener.saved()
        if changes.pending_queues:
            self.listener.pending(changes.pending_queues)

    def _get(self, aggregate_id: UUID):
        try:
            return self.repository.get(aggregate_id, projector_func=_project)
        except AggregateNotFoundError:
            return None

    def task(self, task_id: str) -> Task | None:
        """Read from the log, past the aggregate cache: a task's few events
        decode faster than the cache copies its aggregate (and the cache
        still asks the log for newer events first)."""
        stored = self.recorder.select_events(task_uuid(task_id))
        return _project(None, map(self.mapper.to_domain_event, stored)) if stored else None

    def tasks(self, task_ids: list[str]) -> list[Task | None]:
        """The tasks, in order, as `task` gives them; read in one query where
        the store can (a claimWork batch: one query, not one per task)."""
        select = getattr(self.recorder, "select_aggregates", None)
        if select is None or len(task_ids) < 2:
            return [self.task(task_id) for task_id in task_ids]
        ids = [task_uuid(task_id) for task_id in task_ids]
        found: dict[UUID, Task] = {}
        for aggregate_id, stored in groupby(select(ids), key=lambda event: event.originator_id):
            task = _project(None, map(self.mapper.to_domain_event, stored))
            if task is not None:
                found[aggregate_id] = task
        return [found.get(i) for i in ids]

    def task_group(self, task_group_id: str) -> TaskGroup | None:
        return self._get(group_uuid(task_group_id))

    def _retrying(self, attempt):
        """Run load-decide-save until it commits without a concurrent change."""
        for _ in range(MAX_ATTEMPTS):
            try:
                return attempt()
            except RecordConflictError:
                continue
        raise RequestConflict("Too many concurrent changes; try again.")

    def _change_task(self, task_id: str, decide, missing: str, authorize: Authorize = None):
        """Load-decide-save one task. `authorize` sees the very task the
        command then decides on (after the 404, before anything else), so
        no concurrent change can slip between the check and the decision."""
        def attempt():
            task = self.task(task_id)
            if task is None:
                raise ResourceNotFound(missing.format(task_id=task_id))
            if authorize is not None:
                authorize(task)
            decide(task)
            if task.pending_events:
                self.save(task)
            return task
        return self._retrying(attempt)

    # ------------------------------------------------------------ commands
    def create_task(self, task_id: str, definition: dict, now: int) -> Task:
        task = self._retrying(lambda: self._create_task(task_id, definition, now))
        if task.state == "unscheduled" and definition["dependencies"]:
            return self._schedule_if_dependencies_allow(task, now)
        return task

    def _schedule_if_dependencies_allow(self, task: Task, now: int) -> Task:
        """Look at the dependencies again, after our commit. _create_task read
        them before it committed; a dependency resolving in between is looked
        at by the dependency-resolver, whose query for its dependents either
        sees our committed task (and schedules it) or began before our commit
        - and so after the dependency's resolution committed, which this
        statement, begun after our commit, therefore sees. One of the two
        schedules the task; the aggregate makes a second attempt a no-op."""
        if not self.views.dependencies_satisfied(task.task_id):
            return task
        self._change_if(task.task_id, lambda t: t.schedule_dependent(now))
        return self.task(task.task_id) or task

    def _create_task(self, task_id: str, definition: dict, now: int) -> Task:
        # New tasks are the common case: insert without looking first; the
        # store's uniqueness check reveals a repeat (ADR 0003).
        group = self._admit_to_group(definition)
        try:
            ready = self._dependencies_allow_scheduling(task_id, definition)
        except InputError:
            existing = self.task(task_id)
            if existing is None:
                self._save_changed(group)  # upstream creates the group before it checks dependencies
                raise
            return self._repeated(existing, definition, group)
        task = Task(task_id=task_id, definition=definition)
        if ready:
            task.schedule(now)
        try:
            self.save(*[a for a in (group, task) if a is not None])
            return task
        except RecordConflictError:
            existing = self.task(task_id)
            if existing is None:
                raise  # the group changed meanwhile: try again
            # the failed save took the group's new events with it: admit again
            return self._repeated(existing, definition, self._admit_to_group(definition))

    def _repeated(self, existing: Task, definition: dict, group: TaskGroup | None) -> Task:
        """createTask for a taskId in use: idempotent if the definition is the same."""
        self._save_changed(group)  # the group's longer expiry holds even if this call fails
        if existing.definition != definition:
            raise RequestConflict(f"taskId `{existing.task_id}` already used by another task. "
                                  "This could be the result of faulty idempotency!")
        return existing

    def _save_changed(self, group: TaskGroup | None) -> None:
        if group is not None and group.pending_events:
            self.save(group)

    def _admit_to_group(self, definition: dict) -> TaskGroup | None:
        """The task group with the task admitted, or None when admitting it
        changes nothing (the read model shows that without loading the group)."""
        group_id, expires = definition["taskGroupId"], parse_ms(definition["expires"])
        row = self.views.group_admission(group_id)
        if row is not None and admits_unchanged(row["scheduler_id"], row["expires"], row["sealed"],
                                                definition["schedulerId"], expires):
            return None
        group = self.task_group(group_id)
        if group is None:
            return TaskGroup(task_group_id=group_id, scheduler_id=definition["schedulerId"],
                             expires=group_expiry(expires))
        group.admit(definition["schedulerId"], expires)
        return group

    def _dependencies_allow_scheduling(self, task_id: str, definition: dict) -> bool:
        """Check that dependencies exist and outlive the task; True when none
        is left unsatisfied (behaviour spec §5)."""
        others = [d for d in definition["dependencies"] if d != task_id]
        if not definition["dependencies"]:
            return True
        rows = self.views.tasks_by_id(others, "ever_completed, ever_resolved, expires")
        found = {row["task_id"]: row for row in rows}
        missing = [d for d in others if d not in found]
        deadline = parse_ms(definition["deadline"])
        expiring = [d for d in others if d in found and found[d]["expires"] < deadline]
        if missing or expiring:
            lines = [f"`{d}` does not exist" for d in missing]
            lines += [f"`{d}` expires before the deadline" for d in expiring]
            raise InputError("Task dependencies are not satisfiable:\n" + "\n".join(lines))
        if task_id in definition["dependencies"]:
            return False
        return all(dependency_satisfied(found[d], definition["requires"]) for d in others)

    def schedule_task(self, task_id: str, now: int, authorize: Authorize = None) -> Task:
        return self._change_task(task_id, lambda t: t.schedule(now), NOT_EXISTING, authorize)

    def rerun_task(self, task_id: str, now: int, authorize: Authorize = None) -> Task:
        return self._change_task(task_id, lambda t: t.rerun(now), NOT_CREATED, authorize)

    def cancel_task(self, task_id: str, now: int, authorize: Authorize = None) -> Task:
        return self._change_task(task_id, lambda t: t.cancel(now), NOT_CREATED, authorize)

    def claim_task(self, task_id: str, run_id: int, worker_group: str, worker_id: str, now: int,
                   taken_until: int, authorize: Authorize = None) -> Task:
        return self._change_task(task_id, lambda t: t.claim_task(run_id, worker_group, worker_id, now, taken_until),
                                 NOT_CREATED, authorize)

    def reclaim_task(self, task_id: str, run_id: int, now: int, taken_until: int) -> Task:
        return self._change_task(task_id, lambda t: t.reclaim(run_id, now, taken_until),
                                 NOT_CREATED)

    def report(self, task_id: str, run_id: int, outcome: str, now: int) -> Task:
        return self._change_task(task_id, lambda t: t.report(run_id, outcome, now),
                                 NOT_CREATED)

    def report_exception(self, task_id: str, run_id: int, reason: str, now: int) -> Task:
        return self._change_task(task_id, lambda t: t.report_exception(run_id, reason, now),
                                 NOT_CREATED)

    def seal_task_group(self, task_group_id: str, now: int, authorize: Authorize = None) -> TaskGroup:
        def attempt():
            group = self.task_group(task_group_id)
            if group is None:
                raise ResourceNotFound(f"No task-group with taskGroupId: `{task_group_id}`")
            if authorize is not None:
                authorize(group)
            group.seal(now)
            if group.pending_events:
                self.save(group)
            return group
        return self._retrying(attempt)

    def cancel_task_group(self, task_group_id: str, now: int, authorize: Authorize = None) -> list[str]:
        """Cancel every unresolved task of a sealed group; the ids cancelled now.
        Upstream's order: 404 (no group), 409 (unsealed), then `authorize`
        on the loaded group (its schedulerId and seal never change after)."""
        group = self.task_group(task_group_id)
        if group is None:
            raise ResourceNotFound(f"No task-group with taskGroupId: `{task_group_id}`")
        if group.sealed is None:
            raise RequestConflict(f"Cannot cancel unsealed task group: `{task_group_id}`")
        if authorize is not None:
            authorize(group)
        cancelled = []
        for task_id in self.views.group_member_ids(task_group_id):
            def attempt(task_id=task_id):
                task = self.task(task_id)
                if task is None or task.deadline_ms <= now or task.is_resolved:
                    return False
                task.cancel(now)
                self.save(task)
                return True
            if self._retrying(attempt):
                cancelled.append(task_id)
        return cancelled

    def claim_work(self, task_queue_id: str, worker_group: str, worker_id: str, count: int, now: int,
                   taken_until: int, deliverable: Callable[[Task], bool] = lambda task: True,
                   on_leased: Callable[[int], None] = lambda leased: None) -> list[Task]:
        """Claim up to `count` pending runs of a queue for one worker, in one commit.

        `deliverable` says whether the caller can hand a claimed task out (its
        reply renders). It is asked before the commit: a claim the worker never
        receives would leave the task running with nobody on it until the claim
        expires, and then again on every retry. Such a task is resolved in the
        same commit as exception `malformed-payload` (never retried) instead.

        `on_leased(n)` hears how many runs the lease took, before they are
        loaded and claimed (claimWork's next poll may start looking then)."""
        leased = self.views.lease_pending(task_queue_id, count, now)
        on_leased(len(leased))
        changed = []
        for (task_id, run_id), task in zip(leased, self.tasks([task_id for task_id, _ in leased])):
            if task is not None and _take(task, run_id, worker_group, worker_id, now, taken_until, deliverable):
                changed.append(task)
        if not changed:
            return []
        try:
            self.save(*changed)
            return _running(changed)
        except RecordConflictError:
            return self._claim_one_by_one(changed, worker_group, worker_id, now, taken_until, deliverable)

    def _claim_one_by_one(self, tasks, worker_group, worker_id, now, taken_until, deliverable) -> list[Task]:
        """A batch lost a race (e.g. a concurrent cancel): claim what still can be."""
        changed = []
        for stale in tasks:
            run_id = stale.last_run["runId"]  # malformed-payload is never retried: still the run claimed
            task = self.task(stale.task_id)
            if task is not None and _take(task, run_id, worker_group, worker_id, now, taken_until, deliverable):
                try:
                    self.save(task)
                    changed.append(task)
                except RecordConflictError:
                    self.views.release_lease(task.task_id, run_id)
        return _running(changed)

    # ------------------------------------------------------------ priorities (upstream v95.1)
    def change_task_priority(self, task_id: str, new_priority: str, now: int, authorize: Authorize = None) -> Task:
        return self._change_task(task_id, lambda t: t.change_priority(new_priority, now), NOT_EXISTING, authorize)

    def change_task_group_priority(self, task_group_id: str, new_priority: str, now: int,
                                   authorize: Authorize = None) -> tuple[TaskGroup, list[str]]:
        """Every unresolved task of the group before its deadline takes the
        priority; returns the group and the ids of the tasks that changed."""
        group = self.task_group(task_group_id)
        if group is None:
            raise ResourceNotFound(f"No task-group with taskGroupId: `{task_group_id}`")
        if authorize is not None:
            authorize(group)
        changed = []
        for task_id in self.views.group_member_ids(task_group_id):
            def attempt(task_id=task_id) -> bool:
                task = self.task(task_id)
                if task is None or task.is_resolved or task.deadline_ms <= now:
                    return False
                if not task.change_priority(new_priority, now):
                    return False
                self.save(task)
                return True
            if self._retrying(attempt):
                changed.append(task_id)

        def record() -> TaskGroup:
            current = self.task_group(task_group_id) or group
            current.priority_changed(new_priority, changed, now)
            self.save(current)
            return current
        return self._retrying(record), changed

    # ------------------------------------------------------------ task queues and workers (behaviour spec §10)
    def task_queue_record(self, task_queue_id: str) -> TaskQueue | None:
        return self._get(queue_uuid(task_queue_id))

    def worker_record(self, task_queue_id: str, worker_group: str, worker_id: str) -> Worker | None:
        return self._get(worker_uuid(task_queue_id, worker_group, worker_id))

    def record_seen(self, task_queue_id: str, queue_expires: int | None, now: int,
                    worker: tuple[str, str, int] | None = None) -> None:
        """Mark a task queue (unless `queue_expires` is None) and a worker
        ((group, id, expires)) active at `now`, creating the records;
        expiries never move back. One commit."""
        def attempt() -> None:
            changed: list = []
            if queue_expires is not None:
                queue = self.task_queue_record(task_queue_id)
                if queue is None:
                    queue = TaskQueue(task_queue_id=task_queue_id, now=now, expires=queue_expires)
                else:
                    queue.seen(now, queue_expires)
                changed.append(queue)
            if worker is not None:
                group, worker_id, expires = worker
                record = self.worker_record(task_queue_id, group, worker_id)
                if record is None:
                    record = Worker(task_queue_id=task_queue_id, worker_group=group, worker_id=worker_id, now=now,
                                    expires=expires)
                else:
                    record.seen(now, expires)
                changed.append(record)
            if changed:
                self.save(*changed)
        self._retrying(attempt)

    def declare_task_queue(self, task_queue_id: str, now: int, expires: int | None, description: str | None,
                           stability: str | None) -> TaskQueue:
        """declareWorkerType: create or update the queue (expires default now + 5 days)."""
        from taskjournal.shared.domain.worker import QUEUE_SEEN_EXPIRY_MS

        def attempt() -> TaskQueue:
            new_expires = now + QUEUE_SEEN_EXPIRY_MS if expires is None else expires
            queue = self.task_queue_record(task_queue_id)
            if queue is None:
                queue = TaskQueue(task_queue_id=task_queue_id, now=now, expires=new_expires)
            queue.declare(now, new_expires, description, stability)
            self.save(queue)
            return queue
        return self._retrying(attempt)

    def declare_worker(self, task_queue_id: str, worker_group: str, worker_id: str, now: int,
                       expires: int | None) -> Worker:
        """declareWorker: upsert the queue and the worker. Without `expires`
        both must exist already (upstream fails with a 500; later versions
        require it): a 400 here."""
        def attempt() -> Worker:
            queue = self.task_queue_record(task_queue_id)
            worker = self.worker_record(task_queue_id, worker_group, worker_id)
            if expires is None and (queue is None or worker is None):
                raise InputError("`expires` is required to declare a worker that does not exist yet")
            given = 0 if expires is None else expires  # 0: only where the record exists (above)
            if queue is None:
                queue = TaskQueue(task_queue_id=task_queue_id, now=now, expires=given)
            else:
                queue.seen(now, queue.expires if expires is None else expires)
            if worker is None:
                worker = Worker(task_queue_id=task_queue_id, worker_group=worker_group, worker_id=worker_id,
                                now=now, expires=given)
            else:
                worker.seen(now, worker.expires if expires is None else expires)
            self.save(queue, worker)
            return worker
        return self._retrying(attempt)

    def quarantine_worker(self, task_queue_id: str, worker_group: str, worker_id: str, until: int,
                          info: str | None, client_id: str, now: int) -> Worker:
        def attempt() -> Worker:
            worker = self.worker_record(task_queue_id, worker_group, worker_id)
            if worker is None:
                provisioner, worker_type = task_queue_id.split("/", 1)
                raise ResourceNotFound(f"Worker with workerId `{worker_id}`, workerGroup `{worker_group}`,"
                                       f"worker-type `{worker_type}` and provisionerId `{provisioner}` not found.")
            worker.quarantine(until, info, client_id, now)
            self.save(worker)
            return worker
        return self._retrying(attempt)

    # ------------------------------------------------------------ resolvers (called by background services)
    def schedule_ready_dependents(self, task_id: str, now: int) -> list[Task]:
        return self.schedule_dependents_of([task_id], now)

    def schedule_dependents_of(self, task_ids: list[str], now: int) -> list[Task]:
        """Schedule the dependents of any of `task_ids` that nothing blocks any
        more; the ones this call scheduled. They are saved in one commit; if
        another writer changed one meanwhile, each is decided and saved on its own."""
        ready = [task for task in self.tasks(self.views.ready_dependents(task_ids))
                 if task is not None and task.schedule_dependent(now)]
        if not ready:
            return []
        try:
            self.save(*ready)
            return ready
        except RecordConflictError:
            return [task for task in map(self._schedule_dependent(now), ready) if task is not None]

    def _schedule_dependent(self, now: int) -> Callable[[Task], Task | None]:
        def schedule(stale: Task) -> Task | None:
            if not self._change_if(stale.task_id, lambda task: task.schedule_dependent(now)):
                return None
            return self.task(stale.task_id)
        return schedule

    def resolve_group_if_done(self, task_group_id: str, trigger: int, now: int) -> bool:
        """Record that the group is resolved when none of its tasks is unresolved;
        `trigger` is the log position of the resolution that prompted the check."""
        def attempt():
            unresolved, seen_through = self.views.group_has_unresolved(task_group_id)  # one snapshot
            if unresolved:
                return False
            group = self.task_group(task_group_id)
            if group is None or not group.resolve(trigger, seen_through, now):
                return False
            self.save(group)
            return True
        return self._retrying(attempt)

    def expire_claim(self, task_id: str, run_id: int, taken_until: int, now: int) -> bool:
        return self._change_if(task_id, lambda task: task.expire_claim(run_id, taken_until, now))

    def exceed_deadline(self, task_id: str, now: int) -> bool:
        return self._change_if(task_id, lambda task: task.exceed_deadline(now))

    def _change_if(self, task_id: str, decide) -> bool:
        """A background service's command: True when `decide` changed the task
        (which is then saved); a task that is gone (expired) is no change."""
        def attempt():
            task = self.task(task_id)
            if task is None or not decide(task):
                return False
            self.save(task)
            return True
        return self._retrying(attempt)

    # ------------------------------------------------------------ artifacts (behaviour spec §8)
    def artifact(self, task_id: str, run_id: int, name: str) -> Artifact | None:
        return self._get(artifact_uuid(task_id, run_id, name))

    def create_artifact(self, task_id: str, run_id: int, name: str, request: dict, now: int,
                        reserve_upload: Callable[[Task, str], None] | None = None) -> Artifact:
        """createArtifact (§8.2, §8.3). `request` is the validated body; for
        storageType object, `reserve_upload(task, upload_id)` locks the object
        name in the object service before the artifact is recorded."""
        storage_type = request["storageType"]
        expires = parse_ms(request["expires"])
        content_type = request.get("contentType", DEFAULT_CONTENT_TYPE)

        def attempt() -> Artifact:
            task, run = _artifact_task(self, task_id, run_id, expires, now)
            existing = self.artifact(task_id, run_id, name)
            upload_id = slug_id() if storage_type == "object" and existing is None else None
            details = details_for(storage_type, request, task_id, run_id, name, upload_id)
            if existing is not None:
                existing.revise(storage_type, content_type, expires, details, task.status())
                if existing.pending_events:
                    self.save(existing)
                return existing
            if upload_id is not None and reserve_upload is not None:
                reserve_upload(task, upload_id)
            artifact = Artifact(task_id=task_id, run_id=run_id, name=name, storage_type=storage_type,
                                content_type=content_type, expires=expires, details=details,
                                worker_group=run["workerGroup"], worker_id=run["workerId"],
                                task_status=task.status(), routes=list(task.definition["routes"]))
            self.save(artifact)
            return artifact
        return self._retrying(attempt)

    def finish_artifact(self, task_id: str, run_id: int, name: str, upload_id: str,
                        object_finished: Callable[[], bool]) -> Artifact:
        """finishArtifact (§8.4): 404s first, then the artifact decides."""
        def attempt() -> Artifact:
            artifact = self.artifact(task_id, run_id, name)
            task = self.task(task_id)
            if artifact is None or task is None or not 0 <= run_id < len(task.runs):
                raise ResourceNotFound(f"Artifact with taskId `{task_id}`, runId {run_id}, name `{name}` not found")
            if artifact.finish(upload_id, object_finished, task.status()):
                self.save(artifact)
            return artifact
        return self._retrying(attempt)

    # ------------------------------------------------------------ objects (the object service, spec §9)
    def object(self, name: str) -> Object | None:
        return self._get(object_uuid(name))

    def object_for_download(self, name: str) -> Object | None:
        """The object if its upload is finished (an upload in progress is invisible)."""
        found = self.object(name)
        return found if found is not None and found.is_finished else None

    def create_upload(self, name: str, project_id: str, upload_id: str, expires_ms: int, hashes: dict[str, str],
                      now: int) -> Object:
        """Create the object, or match the same upload in progress (idempotent);
        record the hashes given. 409 for a finished object, any difference, or
        an uploadId in use by another object's upload."""
        def attempt():
            found = self.object(name)
            if found is None:
                other = self.views.object_with_upload(upload_id)
                if other is not None and other != name:
                    raise already_exists()
                found = Object(name=name, project_id=project_id, upload_id=upload_id, expires=expires_ms,
                               upload_expires=now + UPLOAD_LIFETIME_MS)
            else:
                found.match_upload(project_id, upload_id, expires_ms)
            found.add_hashes(hashes)
            if found.pending_events:
                self.save(found)
            return found
        return self._retrying_objects(attempt)

    def negotiate_upload(self, name: str, upload_id: str, content_type: str, content_length: int | None) -> Object:
        """Record what the chosen upload method stores (createUpload, after create_upload)."""
        def attempt():
            found = self.object(name)
            if found is None or found.upload_id != upload_id:
                raise already_exists()
            found.negotiate(content_type, content_length)
            if found.pending_events:
                self.save(found)
            return found
        return self._retrying_objects(attempt)

    def finish_upload(self, name: str, project_id: str, upload_id: str, hashes: dict[str, str], now: int) -> Object:
        """Add the hashes and mark the upload finished (spec §9.5); a repeat
        with hashes already recorded is idempotent. The caller checks the
        stored bytes first."""
        def attempt():
            found = self.object(name)
            if found is None:
                raise ResourceNotFound(f'Object "{name}" not found')
            if found.check_finish(project_id, upload_id, hashes):
                return found
            found.add_hashes(hashes)
            found.finish(now)
            self.save(found)
            return found
        return self._retrying_objects(attempt)

    def _retrying_objects(self, attempt):
        """_retrying, also after a unique index of the read model refused the
        commit (two uploads racing for one uploadId): the next attempt sees
        the winner and answers 409."""
        for _ in range(MAX_ATTEMPTS):
            try:
                return attempt()
            except (RecordConflictError, IntegrityError):
                continue
        raise RequestConflict("Too many concurrent changes; try again.")


def open_journal(database_url: str | None, data_dir: str, max_connections: int = 16,
                 listener: CommitListener | None = None, schema_mode: str = "auto") -> Journal:
    env, store = open_store(database_url, data_dir, max_connections, schema_mode)
    return Journal(env, store, listener)


def _project(aggregate, events):
    """The library's project_aggregate without its per-event isinstance check
    against a runtime Protocol (a few percent of a gateway's CPU): our events
    are all the library's own, which mutate."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def dependency_satisfied(row: dict, requires: str) -> bool:
    """A dependency (its read-model row) satisfies a dependent once it ever
    completed, or for `all-resolved` ever resolved: upstream marks the
    dependency satisfied when it resolves and a rerun never unsatisfies it
    (spec §5). ready_dependents / unsatisfied_dependency in
    store/sql/queries.sql apply the same test for the dependency-resolver."""
    return bool(row["ever_completed"]) or (requires == "all-resolved" and bool(row["ever_resolved"]))


def _take(task: Task, run_id: int, worker_group: str, worker_id: str, now: int, taken_until: int,
          deliverable: Callable[[Task], bool]) -> bool:
    """Claim the run; if the claim cannot be delivered, resolve it as malformed-payload.
    True when the task changed (and must be saved)."""
    if not task.claim_work(run_id, worker_group, worker_id, now, taken_until):
        return False
    if not deliverable(task):
        task.report_exception(run_id, "malformed-payload", now)
    return True


def _running(tasks: list[Task]) -> list[Task]:
    """The claimed tasks, without those resolved as undeliverable."""
    return [task for task in tasks if task.state == "running"]


# ---------------------------------------------------------------- artifacts (behaviour spec §8)
ARTIFACT_PAST_TOLERANCE_MS = 15 * 60 * 1000  # `expires` may lie this far in the past
EXCEPTION_GRACE_MS = 25 * 60 * 1000  # artifacts of a run resolved `exception` are accepted this long after


def _artifact_task(journal: Journal, task_id: str, run_id: int, expires: int, now: int) -> tuple[Task, dict]:
    """The task and run createArtifact may add to, in upstream's order of checks."""
    if expires < now - ARTIFACT_PAST_TOLERANCE_MS:
        raise InputError("Expires must be in the future")
    task = journal.task(task_id)
    if task is None:
        raise InputError("Task not found")
    if not 0 <= run_id < len(task.runs):
        raise InputError("Run not found")
    run = task.runs[run_id]
    if not run.get("workerGroup") or not run.get("workerId"):
        raise InputError("Run was not claimed by a worker and so no artifacts can exist")
    task_expires = parse_ms(task.definition["expires"])
    if expires > task_expires:
        raise InputError(f"Artifact expires ({format_ms(expires)}) after the task expiration "
                         f"{format_ms(task_expires)} (task.expires < expires) - this is not allowed, "
                         "artifacts may not expire after the task they belong to expires")
    if run["state"] != "running":
        late_exception = run["state"] == "exception" and parse_ms(run["resolved"]) > now - EXCEPTION_GRACE_MS
        if not late_exception:
            raise RequestConflict(
                "Artifacts cannot be created for a task after it is resolved, unless it is resolved 'exception', "
                "and even in this case only up to 25 min past resolution.This to ensure that artifacts have been "
                "uploaded before a task is 'completed' and output is consumed by a dependent task\n\n"
                f"Task status: {json.dumps(task.status(), indent=2)}")
    return task, run
