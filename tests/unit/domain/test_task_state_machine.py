"""Random command sequences against one Task, with a clock that only moves
forward. Refusals (409/404) are legal answers but must leave the task
untouched; the invariants of behaviour spec §2.2/§3 are checked after every
step, and the final task must replay to an equal status."""

import copy

from eventsourcing.application import Application
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from taskjournal.shared.domain.errors import RequestConflict, ResourceNotFound
from taskjournal.shared.domain.task import MAX_RUNS, RESOLVED
from taskjournal.shared.domain.time import format_ms, parse_ms

from tests.support.domain import NOW, SECOND, make_task

WORKERS = [("g1", "w1"), ("g1", "w2"), ("g2", "w1")]
REASONS = ["worker-shutdown", "intermittent-task", "malformed-payload", "resource-unavailable", "internal-error"]
RETRIED_BY = {"retry": ("worker-shutdown", "claim-expired"), "task-retry": ("intermittent-task",)}
REFUSALS = (RequestConflict, ResourceNotFound)
WORKER_FIELDS = ("workerGroup", "workerId", "started")

run_offsets = st.sampled_from([0, 0, 0, -1, -2, 1])  # relative to the last run: mostly the last one
workers = st.sampled_from(WORKERS)


class TaskMachine(RuleBasedStateMachine):
    @initialize(retries=st.one_of(st.integers(0, 3), st.sampled_from([47, 48, 49]), st.integers(0, 49)),
                deadline_s=st.integers(1, 3600),
                scheduled=st.booleans())
    def create(self, retries, deadline_s, scheduled):
        self.now = NOW
        self.retries = retries
        self.task = make_task(NOW, retries=retries, deadline=format_ms(NOW + deadline_s * SECOND))
        if scheduled:
            self.task.schedule(NOW)
        self.claims: dict[int, dict] = {}     # runId -> worker fields first seen
        self.resolved: dict[int, dict] = {}   # runId -> the run when first seen resolved

    # ------------------------------------------------------------ helpers
    def run_id(self, offset: int) -> int:
        return len(self.task.runs) - 1 + offset

    def attempt(self, command):
        """Run a command; a refusal (409/404, or False) must change nothing."""
        version, status = self.task.version, copy.deepcopy(self.task.status())
        try:
            result = command()
        except REFUSALS:
            result = False
        if result is False:
            assert self.task.version == version and self.task.status() == status
        return result

    # ------------------------------------------------------------ the clock
    @rule(seconds=st.integers(0, 60))
    def advance(self, seconds):
        self.now += seconds * SECOND

    # ------------------------------------------------------------ commands
    @rule()
    def schedule(self):
        had_runs = bool(self.task.runs)
        version = self.task.version
        try:
            self.task.schedule(self.now)
        except RequestConflict:
            assert self.now > self.task.deadline_ms and self.task.version == version
            return
        if had_runs:
            assert self.task.version == version
        else:
            assert self.task.runs[0]["reasonCreated"] == "scheduled" and self.task.state == "pending"

    @rule()
    def rerun(self):
        before = [dict(r) for r in self.task.runs]
        self.attempt(lambda: self.task.rerun(self.now))
        runs = self.task.runs
        if len(runs) == len(before) + 1:
            assert runs[-1]["reasonCreated"] == "rerun" and runs[-1]["state"] == "pending"
            assert self.task.retries_left == min(self.retries, MAX_RUNS - 1 - len(before))
            assert not before or before[-1]["state"] in RESOLVED
        else:
            assert runs == before
            may_rerun = not before or (before[-1]["state"] in RESOLVED and len(before) < MAX_RUNS)
            assert self.now > self.task.deadline_ms or not may_rerun

    @rule(odds=st.integers(0, 2))
    def cancel(self, odds):
        if odds:  # cancel ends most sequences: make it rarer than other commands
            return
        was = self.task.state
        self.attempt(lambda: self.task.cancel(self.now))
        if self.now <= self.task.deadline_ms:
            assert self.task.is_resolved
            if was in ("unscheduled", "pending", "running"):
                assert self.task.last_run["reasonResolved"] == "canceled"

    @rule(offset=run_offsets, worker=workers, timeout_s=st.integers(1, 60))
    def claim(self, offset, worker, timeout_s):
        run_id = self.run_id(offset)
        if self.attempt(lambda: self.task.claim_work(run_id, *worker, self.now, self.now + timeout_s * SECOND)):
            run = self.task.runs[run_id]
            assert (run["workerGroup"], run["workerId"], run["state"]) == (*worker, "running")
            assert run["started"] == format_ms(self.now)

    @rule(offset=run_offsets, worker=workers, timeout_s=st.integers(1, 60))
    def claim_task(self, offset, worker, timeout_s):
        run_id = self.run_id(offset)
        if self.attempt(lambda: self.task.claim_task(run_id, *worker, self.now, self.now + timeout_s * SECOND)) is False:
            return
        run = self.task.runs[run_id]
        assert run is self.task.last_run and run["state"] == "running"
        assert (run["workerGroup"], run["workerId"]) == worker  # only ever granted to its worker

    @rule(offset=run_offsets, timeout_s=st.integers(1, 60))
    def reclaim(self, offset, timeout_s):
        run_id = self.run_id(offset)
        self.attempt(lambda: self.task.reclaim(run_id, self.now, self.now + timeout_s * SECOND))

    @rule(offset=run_offsets, outcome=st.sampled_from(["completed", "failed"]))
    def report(self, offset, outcome):
        run_id = self.run_id(offset)
        if self.attempt(lambda: self.task.report(run_id, outcome, self.now)) is False:
            return
        run = self.task.runs[run_id]
        assert run is self.task.last_run and run["state"] == run["reasonResolved"] == outcome

    @rule(offset=run_offsets, reason=st.sampled_from(REASONS))
    def report_exception(self, offset, reason):
        run_id = self.run_id(offset)
        runs_before, retries_before = len(self.task.runs), self.task.retries_left
        was_running = self.task.last_run is not None and self.task.last_run["runId"] == run_id \
            and self.task.last_run["state"] == "running"
        if self.attempt(lambda: self.task.report_exception(run_id, reason, self.now)) is False:
            return
        run = self.task.runs[run_id]
        assert (run["state"], run["reasonResolved"]) == ("exception", reason)
        assert len(self.task.runs) <= run_id + 2
        self.check_retry(runs_before, retries_before, reason)
        retried = reason in ("worker-shutdown", "intermittent-task")
        assert len(self.task.runs) == runs_before + (was_running and retried and retries_before > 0)

    def check_retry(self, runs_before: int, retries_before: int, reason: str):
        """§3.4: a retried reason adds a run while retries are left, using one up."""
        added = len(self.task.runs) - runs_before
        if added == 0:
            assert self.task.retries_left == retries_before
            return
        assert added == 1
        retried = reason in RETRIED_BY["retry"] or reason in RETRIED_BY["task-retry"]
        assert retried and retries_before > 0, f"{reason} retried with {retries_before} retries left"
        assert self.task.retries_left == retries_before - 1

    @rule(offset=run_offsets, exact=st.booleans())
    def expire_claim(self, offset, exact):
        run_id = self.run_id(offset)
        last = self.task.last_run
        if exact and last is not None and "takenUntil" in last:
            taken_until = parse_ms(last["takenUntil"])
        else:
            taken_until = self.now - SECOND
        runs_before, retries_before = len(self.task.runs), self.task.retries_left
        if self.attempt(lambda: self.task.expire_claim(run_id, taken_until, self.now)):
            self.check_retry(runs_before, retries_before, "claim-expired")
            assert len(self.task.runs) == runs_before + (retries_before > 0)
            run = self.task.runs[run_id]
            assert (run["state"], run["reasonResolved"]) == ("exception", "claim-expired")
            assert taken_until <= self.now < self.task.deadline_ms

    @rule()
    def exceed_deadline(self):
        was_resolved = self.task.is_resolved
        if self.attempt(lambda: self.task.exceed_deadline(self.now)):
            assert not was_resolved and self.now >= self.task.deadline_ms
            assert (self.task.state, self.task.last_run["reasonResolved"]) == ("exception", "deadline-exceeded")
        else:
            assert was_resolved or self.now < self.task.deadline_ms

    @precondition(lambda self: self.task.runs and self.task.last_run["state"] == "running")
    @rule()
    def let_claim_expire(self):
        """The claim resolver's view: the clock passes takenUntil without a reclaim."""
        self.now = max(self.now, parse_ms(self.task.last_run["takenUntil"]))
        self.expire_claim(0, True)

    @precondition(lambda self: self.task.runs)
    @rule(reason=st.sampled_from(REASONS))
    def work_last_run(self, reason):
        """Help sequences get long: claim the last run if pending, then report an exception."""
        last = self.task.last_run
        if last["state"] == "pending":
            self.attempt(lambda: self.task.claim_work(last["runId"], "g0", "w0", self.now, self.now + 10 * SECOND))
        self.report_exception(0, reason)

    # ------------------------------------------------------------ invariants
    @invariant()
    def run_ids_are_contiguous_from_zero(self):
        assert [r["runId"] for r in self.task.runs] == list(range(len(self.task.runs)))

    @invariant()
    def only_the_last_run_can_be_unresolved(self):
        for run in self.task.runs[:-1]:
            assert run["state"] in RESOLVED

    @invariant()
    def state_is_the_last_run_state(self):
        status = self.task.status()
        expected = self.task.runs[-1]["state"] if self.task.runs else "unscheduled"
        assert status["state"] == self.task.state == expected

    @invariant()
    def retries_are_bounded(self):
        assert 0 <= self.task.retries_left <= self.retries
        assert len(self.task.runs) <= MAX_RUNS
        assert len(self.task.runs) + self.task.retries_left <= MAX_RUNS

    @invariant()
    def a_run_is_claimed_at_most_once(self):
        for run in self.task.runs:
            fields = {k: run[k] for k in WORKER_FIELDS if k in run}
            if run["runId"] in self.claims:
                assert fields == self.claims[run["runId"]]
            elif fields:
                assert set(fields) == set(WORKER_FIELDS)
                self.claims[run["runId"]] = fields
            if run["state"] == "running":
                assert set(fields) == set(WORKER_FIELDS) and "takenUntil" in run

    @invariant()
    def resolved_runs_never_change(self):
        for run in self.task.runs:
            if run["runId"] in self.resolved:
                assert run == self.resolved[run["runId"]]
            elif run["state"] in RESOLVED:
                assert run["reasonResolved"] and "resolved" in run
                self.resolved[run["runId"]] = copy.deepcopy(run)

    @invariant()
    def runs_are_created_for_a_documented_reason(self):
        runs = self.task.runs
        for i, run in enumerate(runs):
            if i == 0:
                assert run["reasonCreated"] in ("scheduled", "rerun", "exception")
            else:
                assert run["reasonCreated"] in ("retry", "task-retry", "rerun")
            if run["reasonCreated"] in RETRIED_BY:
                previous = runs[i - 1]
                assert previous["state"] == "exception"
                assert previous["reasonResolved"] in RETRIED_BY[run["reasonCreated"]]
                assert previous["resolved"] == run["scheduled"]
            if run["reasonCreated"] == "exception":
                assert run["state"] == "exception" and run["scheduled"] == run["resolved"]
                assert run["reasonResolved"] in ("canceled", "deadline-exceeded")

    def teardown(self):
        if not hasattr(self, "task"):
            return
        app = Application()
        app.save(self.task)
        assert app.repository.get(self.task.id).status() == self.task.status()


TaskMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=80, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])
TestTaskStateMachine = TaskMachine.TestCase
