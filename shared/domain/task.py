"""The Task aggregate: a definition and its runs. Command methods decide
(behaviour spec §3-§4, §7.13-§7.22); the event-decorated methods below them
are the only code that changes state, so replaying the events rebuilds it."""

from eventsourcing.domain import Aggregate, event

from . import definition as definitions
from .errors import RequestConflict, ResourceNotFound
from .ids import task_uuid
from .time import format_ms, parse_ms

MAX_RUNS = 50
RESOLVED = ("completed", "failed", "exception")
RETRIED_REASONS = {"worker-shutdown": "retry", "intermittent-task": "task-retry", "claim-expired": "retry"}


class Task(Aggregate):
    priority_override: str | None = None  # changeTaskPriority (upstream v95.1); the definition keeps its own

    @staticmethod
    def create_id(task_id: str):
        return task_uuid(task_id)

    @event("Defined")
    def __init__(self, task_id: str, definition: dict):
        self.task_id = task_id
        self.definition = definition
        self.runs: list[dict] = []
        self.retries_left: int = definition["retries"]
        self.claimed_at: int | None = None
        self.claimed_by_claim_task: set[int] = set()  # runs claimTask may hand out again to their worker

    # ------------------------------------------------------------ queries
    @property
    def deadline_ms(self) -> int:
        return parse_ms(self.definition["deadline"])

    @property
    def last_run(self) -> dict | None:
        return self.runs[-1] if self.runs else None

    @property
    def state(self) -> str:
        return self.runs[-1]["state"] if self.runs else "unscheduled"

    @property
    def is_resolved(self) -> bool:
        return self.state in RESOLVED

    @property
    def ever_completed(self) -> bool:
        return any(run["state"] == "completed" for run in self.runs)

    @property
    def ever_resolved(self) -> bool:
        """A run was resolved for good: a resolution the queue retried at once
        (claim-expired, worker-shutdown, intermittent-task with retries left)
        does not resolve the task, so it satisfies no `all-resolved` dependent
        (spec §5: only resolutions without retry feed propagation)."""
        return any(run["state"] in RESOLVED and not self._retried(index) for index, run in enumerate(self.runs))

    def _retried(self, run_id: int) -> bool:
        following = self.runs[run_id + 1] if run_id + 1 < len(self.runs) else None
        return following is not None and following["reasonCreated"] in RETRIED_REASONS.values()

    @property
    def priority(self) -> str:
        """The priority pending runs are claimed by: a changed one, else the definition's."""
        return self.priority_override or self.definition["priority"]

    def status(self) -> dict:
        d = self.definition
        provisioner, worker_type = definitions.split_queue(d["taskQueueId"])
        status = {
            "taskId": self.task_id, "provisionerId": provisioner, "workerType": worker_type,
            "taskQueueId": d["taskQueueId"], "schedulerId": d["schedulerId"], "projectId": d["projectId"],
            "taskGroupId": d["taskGroupId"], "deadline": d["deadline"], "expires": d["expires"],
            "retriesLeft": self.retries_left, "state": self.state, "runs": [dict(r) for r in self.runs],
        }
        if self.priority_override is not None:  # upstream's status has `priority` since v95.1
            status["priority"] = self.priority_override
        return status

    def public_body(self) -> dict:
        return definitions.public_body(self.definition)

    def run(self, run_id: int) -> dict:
        if not 0 <= run_id < len(self.runs):
            raise ResourceNotFound(f"Run {run_id} not found on task `{self.task_id}`.")
        return self.runs[run_id]

    # ------------------------------------------------------------ commands
    def schedule(self, now: int) -> None:
        self._refuse_past_deadline(now, "can't be scheduled past its deadline at")
        if not self.runs:
            self._run_added("scheduled", now, self.retries_left)

    def schedule_dependent(self, now: int) -> bool:
        """The dependency-resolver's job: dependencies allow it, so schedule,
        unless the task already has runs or its deadline passed."""
        if self.runs or self.deadline_ms <= now:
            return False
        self._run_added("scheduled", now, self.retries_left)
        return True

    def rerun(self, now: int) -> None:
        self._refuse_past_deadline(now, "can't be rescheduled past its deadline of")
        if self.runs and not self.is_resolved:
            return  # pending or running: nothing to do
        if len(self.runs) >= MAX_RUNS:
            raise RequestConflict(f"Maximum number of runs reached ({MAX_RUNS}).")
        retries = min(self.definition["retries"], MAX_RUNS - 1 - len(self.runs))
        self._run_added("rerun", now, retries)

    def cancel(self, now: int) -> None:
        self._refuse_past_deadline(now, "can't be canceled past its deadline of")
        self._resolve_unfinished("canceled", now)

    def exceed_deadline(self, now: int) -> bool:
        """Resolve as deadline-exceeded if the deadline passed while unresolved."""
        if self.deadline_ms > now or self.is_resolved:
            return False
        self._resolve_unfinished("deadline-exceeded", now)
        return True

    def claim_work(self, run_id: int, worker_group: str, worker_id: str, now: int, taken_until: int,
                   via_claim_task: bool = False) -> bool:
        """claimWork: take a pending run; False when it is no longer claimable."""
        run = self.last_run
        if run is None or run["runId"] != run_id or run["state"] != "pending" or self.deadline_ms <= now:
            return False
        self._run_claimed(run_id, worker_group, worker_id, now, taken_until, via_claim_task)
        return True

    def claim_task(self, run_id: int, worker_group: str, worker_id: str, now: int, taken_until: int) -> None:
        """claimTask: like claim_work, but explicit about failures and idempotent per worker."""
        self._refuse_past_deadline(now, "can't be claimed past its deadline of", inclusive=True)
        run = self.run(run_id)
        if self.claim_work(run_id, worker_group, worker_id, now, taken_until, via_claim_task=True):
            return
        same_worker = run.get("workerGroup") == worker_group and run.get("workerId") == worker_id
        repeat = run_id in self.claimed_by_claim_task and same_worker
        if not (run is self.last_run and run["state"] == "running" and repeat):
            raise RequestConflict(f"Run {run_id} was already claimed by another worker.")

    def reclaim(self, run_id: int, now: int, taken_until: int) -> None:
        run = self.run(run_id)  # §7.19: an unknown run is 404 before the deadline's 409
        self._refuse_past_deadline(now, "can't be reclaimed past its deadline of", inclusive=True)
        if run is not self.last_run or run["state"] != "running":
            raise RequestConflict(f"Run {run_id} on task `{self.task_id}` is resolved or not running.")
        self._run_reclaimed(run_id, now, taken_until)

    def report(self, run_id: int, outcome: str, now: int) -> None:
        """reportCompleted / reportFailed; repeating the same report is accepted."""
        run = self.run(run_id)
        if run["state"] not in ("running", outcome):
            raise RequestConflict(f"Run {run_id} of task `{self.task_id}` is not running or {outcome}.")
        if run["state"] == "running" and run is self.last_run:
            self._run_resolved(run_id, outcome, outcome, now)
        if run is not self.last_run or run.get("reasonResolved") != outcome:
            raise RequestConflict(f"Run {run_id} on task `{self.task_id}` is resolved or not running.")

    def report_exception(self, run_id: int, reason: str, now: int) -> None:
        run = self.run(run_id)
        if run is self.last_run and run["state"] == "running":
            self._resolve_with_retry(run_id, reason, now)
        settled = run["state"] == "exception" and run.get("reasonResolved") == reason
        if not settled or len(self.runs) > run_id + 2:
            raise RequestConflict(f"Run {run_id} on task `{self.task_id}` is resolved or not running.")

    def expire_claim(self, run_id: int, taken_until: int, now: int) -> bool:
        """The claim-resolver's job: a claim not renewed by takenUntil ends as
        claim-expired (retried while retries are left). The deadline wins."""
        run = self.last_run
        if run is None or run["runId"] != run_id or run["state"] != "running":
            return False
        if parse_ms(run["takenUntil"]) != taken_until or taken_until > now or self.deadline_ms <= now:
            return False
        self._resolve_with_retry(run_id, "claim-expired", now)
        return True

    def change_priority(self, new_priority: str, now: int) -> bool:
        """changeTaskPriority (upstream v95.1): an unresolved task before its
        deadline takes the new priority; a pending run keeps its place in
        time and is claimed by the new priority at once, and later runs
        (retries, reruns) keep it. False when the priority is already that."""
        if self.is_resolved:
            raise RequestConflict(f"Task `{self.task_id}` is resolved; its priority cannot change.")
        self._refuse_past_deadline(now, "can't change priority past its deadline of", inclusive=True)
        if new_priority == self.priority:
            return False
        self._priority_changed(self.priority, new_priority, now)
        return True

    # ------------------------------------------------------------ decisions shared by commands
    def _refuse_past_deadline(self, now: int, what: str, inclusive: bool = False) -> None:
        deadline = self.deadline_ms
        if deadline < now or (inclusive and deadline == now):
            raise RequestConflict(f"Task `{self.task_id}` {what} {self.definition['deadline']}.")

    def _resolve_unfinished(self, reason: str, now: int) -> None:
        if not self.runs:
            self._run_added("exception", now, self.retries_left)
        last = self.runs[-1]
        if last["state"] in ("pending", "running"):
            self._run_resolved(last["runId"], "exception", reason, now)

    def _resolve_with_retry(self, run_id: int, reason: str, now: int) -> None:
        self._run_resolved(run_id, "exception", reason, now)
        retry = RETRIED_REASONS.get(reason)
        if retry and self.retries_left > 0:
            self._run_added(retry, now, self.retries_left - 1)

    # ------------------------------------------------------------ events
    @event("PriorityChanged")
    def _priority_changed(self, old_priority: str, new_priority: str, at: int) -> None:
        self.priority_override = new_priority

    @event("RunAdded")
    def _run_added(self, reason_created: str, at: int, retries_left: int) -> None:
        self.runs.append({"runId": len(self.runs), "state": "pending", "reasonCreated": reason_created,
                          "scheduled": format_ms(at)})
        self.retries_left = retries_left

    @event("RunClaimed")
    def _run_claimed(self, run_id: int, worker_group: str, worker_id: str, at: int, taken_until: int,
                     via_claim_task: bool = False) -> None:
        run = self.runs[run_id]
        run.update(state="running", workerGroup=worker_group, workerId=worker_id,
                   takenUntil=format_ms(taken_until), started=format_ms(at))
        self.claimed_at = at
        if via_claim_task:
            self.claimed_by_claim_task.add(run_id)

    @event("RunReclaimed")
    def _run_reclaimed(self, run_id: int, at: int, taken_until: int) -> None:
        self.runs[run_id]["takenUntil"] = format_ms(taken_until)
        self.claimed_at = at

    @event("RunResolved")
    def _run_resolved(self, run_id: int, state: str, reason: str, at: int) -> None:
        self.runs[run_id].update(state=state, reasonResolved=reason, resolved=format_ms(at))
