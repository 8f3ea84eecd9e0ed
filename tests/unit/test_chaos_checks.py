"""The fault campaign's checks (bench/chaos.py) find each kind of violation
they name: a campaign whose checks cannot fail proves nothing."""

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "chaos.py"


@pytest.fixture(scope="module")
def chaos():
    spec = importlib.util.spec_from_file_location("chaos_campaign", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _graph(chaos):
    """A completes; B (all-completed) and C (all-resolved) depend on it."""
    a, b, c = chaos.Node("A"), chaos.Node("B", ["A"]), chaos.Node("C", ["A"], "all-resolved")
    return [[a, b, c]]


def _clean_facts(chaos):
    facts = chaos.LogFacts()
    facts.final = {t: SimpleNamespace(state="completed") for t in "ABC"}
    for position, task in enumerate("ABC", start=1):
        facts.defined_at[task] = position
        facts.claims[(task, 0)] = 1
        facts.claimed_by[(task, 0)] = "w0"
        facts.resolved[(task, 0)] = "completed"
        facts.completed_at[task] = 10 + position
        facts.messages[("task-completed", task, 0)] = 1
    return facts


def _workload(claims=(), reports=()):
    return SimpleNamespace(claims=list(claims), reports=list(reports))


def _pulse(facts):
    return [(name, task, run, "completed") for (name, task, run), count in facts.messages.items()
            for _ in range(count)]


def _kinds(chaos, facts, pulse, workload=None, strict=False):
    found, duplicates, _ = chaos.check(_graph(chaos), workload or _workload(), facts, {}, pulse, strict)
    return {kind: len(details) for kind, details in found.by_kind.items()}, duplicates


def test_a_clean_run_has_no_violation(chaos):
    facts = _clean_facts(chaos)
    claims = [(t, 0, "w0") for t in "ABC"]
    reports = [(t, 0, "completed") for t in "ABC"]
    assert _kinds(chaos, facts, _pulse(facts), _workload(claims, reports)) == ({}, Counter())


def test_a_run_claimed_twice_and_handed_to_two_workers(chaos):
    facts = _clean_facts(chaos)
    facts.claims[("A", 0)] = 2
    kinds, _ = _kinds(chaos, facts, _pulse(facts), _workload([("A", 0, "w0"), ("A", 0, "w1")]))
    assert kinds == {"run-claimed-twice": 1, "run-handed-to-two-workers": 1}


def test_a_lost_terminal_message_is_a_violation_and_a_duplicate_is_counted_apart(chaos):
    facts = _clean_facts(chaos)
    pulse = [m for m in _pulse(facts) if m[1] != "A"] + [("task-completed", "B", 0, "completed")]
    kinds, duplicates = _kinds(chaos, facts, pulse)
    assert kinds == {"terminal-message-lost": 1} and duplicates == Counter(terminal=1)
    kinds, _ = _kinds(chaos, facts, pulse, strict=True)
    assert kinds == {"terminal-message-lost": 1, "terminal-message-duplicated": 1}


def test_a_dependent_left_unscheduled_names_who_missed_it(chaos):
    facts = _clean_facts(chaos)
    facts.final["B"] = SimpleNamespace(state="unscheduled")
    facts.defined_at["B"] = 20  # after A completed at 11: createTask should have scheduled it
    found, _, _ = chaos.check(_graph(chaos), _workload(), facts, {}, _pulse(facts), False)
    [detail] = found.by_kind["dependent-left-unscheduled"]
    assert "missed by createTask" in detail


def test_acknowledged_report_missing_from_the_log(chaos):
    facts = _clean_facts(chaos)
    kinds, _ = _kinds(chaos, facts, _pulse(facts), _workload(reports=[("A", 0, "failed")]))
    assert kinds == {"acknowledged-report-missing": 1}


def test_a_resolution_followed_by_a_retry_satisfies_no_dependent(chaos):
    facts = chaos.LogFacts()
    a = SimpleNamespace(task_id="A", definition={"dependencies": [], "requires": "all-completed"})
    c = SimpleNamespace(task_id="C", definition={"dependencies": ["A"], "requires": "all-resolved"})
    follow = chaos._follow_dependencies
    follow(facts, "Task.RunResolved", SimpleNamespace(state="exception"), a, 5)  # claim-expired ...
    follow(facts, "Task.RunAdded", SimpleNamespace(reason_created="retry"), a, 6)  # ... and retried
    follow(facts, "Task.RunAdded", SimpleNamespace(reason_created="scheduled"), c, 7)
    assert facts.early == [("C", 7, ["A"])]
    follow(facts, "Task.RunResolved", SimpleNamespace(state="failed"), a, 8)  # resolved for good
    follow(facts, "Task.RunAdded", SimpleNamespace(reason_created="scheduled"), c, 9)
    assert facts.early == [("C", 7, ["A"])]
