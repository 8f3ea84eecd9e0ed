"""The official reference is found next to the repository, and a test that
needs it cannot pass without it when CI is set (tests.support.reference)."""

from pathlib import Path

import pytest

from tests.support import reference

QUEUE_SCHEMAS = ("schemas", "queue", "v1")


def test_the_reference_is_looked_up_next_to_the_repository(monkeypatch):
    monkeypatch.delenv("TASKJOURNAL_REFERENCE_DIR", raising=False)
    repository = Path(__file__).resolve().parents[2]
    assert reference.reference_dir() == repository.parent / "shared" / "reference" / "taskcluster-v64.2.5"


def test_the_reference_dir_can_be_moved(monkeypatch, tmp_path):
    (tmp_path / "schemas").mkdir()
    monkeypatch.setenv("TASKJOURNAL_REFERENCE_DIR", str(tmp_path))
    assert reference.require("schemas") == tmp_path / "schemas"


def test_a_missing_reference_fails_in_ci(monkeypatch, tmp_path):
    monkeypatch.setenv("CI", "1")
    missing = tmp_path / "absent"
    with pytest.raises(pytest.fail.Exception, match="CI is set") as failure:
        reference.require(*QUEUE_SCHEMAS, root=missing)
    assert str(missing.joinpath(*QUEUE_SCHEMAS)) in str(failure.value)


def test_a_missing_reference_is_skipped_with_its_path_outside_ci(monkeypatch, tmp_path):
    monkeypatch.delenv("CI", raising=False)
    missing = tmp_path / "absent"
    with pytest.raises(pytest.skip.Exception, match="reference .*is missing") as skip:
        reference.require(*QUEUE_SCHEMAS, root=missing)
    assert str(missing.joinpath(*QUEUE_SCHEMAS)) in str(skip.value)


def test_a_missing_reference_fails_a_whole_test_run_in_ci(pytester, monkeypatch, tmp_path):
    """The way the suite uses it: a test needing an absent reference is failed, not skipped."""
    monkeypatch.setenv("CI", "1")
    monkeypatch.setenv("TASKJOURNAL_REFERENCE_DIR", str(tmp_path / "absent"))
    pytester.makepyfile("""
        from tests.support import reference

        def test_needs_the_schemas():
            reference.require("schemas", "queue", "v1")
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(failed=1)


def test_the_queue_schemas_are_here():
    """In CI this fails when ../shared/reference is missing, so every schema check runs."""
    assert (reference.require(*QUEUE_SCHEMAS) / "task-status-response.json").is_file()
