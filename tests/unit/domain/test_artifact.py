"""The Artifact aggregate: the immutability rules of a repeated createArtifact
(behaviour spec §8.3) against a model written from the spec's table, and
finishArtifact (§8.4, v105.1.0)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskjournal.shared.domain.artifact import Artifact, compatible, name_problem
from taskjournal.shared.domain.errors import InputError, RequestConflict

TYPES = ("s3", "object", "reference", "link", "error")
STATUS = {"taskId": "fake"}


def model_allows(original: dict, new: dict) -> bool:
    """§8.3 as a table: every exception spelled out once."""
    same_type = new["storageType"] == original["storageType"]
    content_ok = new["storageType"] == "link" or new["contentType"] == original["contentType"]
    expires_ok = new["expires"] >= original["expires"]
    if same_type:
        details_ok = new["storageType"] == "reference" or new["details"] == original["details"]
    else:
        details_ok = original["storageType"] == "reference" and new["storageType"] == "link"
    return content_ok and expires_ok and details_ok


requests = st.fixed_dictionaries({
    "storageType": st.sampled_from(TYPES),
    "contentType": st.sampled_from(["text/plain", "application/json"]),
    "expires": st.integers(0, 3),
    "details": st.sampled_from([{"url": "https://a"}, {"url": "https://b"}, {"artifact": "x"}, {"artifact": "y"}]),
})


@given(requests, requests)
def test_repeats_are_allowed_exactly_as_the_rules_say(original, new):
    assert compatible(original, new) == model_allows(original, new)


def new_artifact(storage_type="reference", content_type="text/html", expires=100, details=None) -> Artifact:
    return Artifact(task_id="t", run_id=0, name="public/x", storage_type=storage_type, content_type=content_type,
                    expires=expires, details=details if details is not None else {"url": "https://a"},
                    worker_group="g", worker_id="w", task_status=STATUS, routes=[])


@given(requests)
def test_revise_changes_the_artifact_only_when_allowed(new):
    artifact = new_artifact()
    original = artifact.as_request()
    allowed = compatible(original, new)
    try:
        artifact.revise(new["storageType"], new["contentType"], new["expires"], new["details"], STATUS)
    except RequestConflict as conflict:
        assert not allowed
        assert "Artifact already exists with different properties" in conflict.message
        assert artifact.as_request() == original
        return
    assert allowed
    assert artifact.content_type == "text/html"  # never changed, not even by a link
    assert (artifact.storage_type, artifact.expires, artifact.details) == (
        new["storageType"], new["expires"], new["details"])


def test_an_identical_repeat_records_nothing():
    artifact = new_artifact()
    artifact.collect_events()
    artifact.revise("reference", "text/html", 100, {"url": "https://a"}, STATUS)
    assert artifact.pending_events == []


def test_reference_replaced_by_link_keeps_its_content_type():
    artifact = new_artifact()
    artifact.revise("link", "application/json", 100, {"artifact": "public/y"}, STATUS)
    assert artifact.info()["storageType"] == "link" and artifact.info()["contentType"] == "text/html"


def test_object_artifact_is_present_only_once_finished():
    artifact = new_artifact("object", "text/plain", 100, {"uploadId": "u1"})
    assert not artifact.present
    with pytest.raises(InputError, match="given uploadId does not match"):
        artifact.finish("u2", lambda: True, STATUS)
    with pytest.raises(InputError, match="Object storing artifact data does not exist"):
        artifact.finish("u1", lambda: False, STATUS)
    assert artifact.finish("u1", lambda: True, STATUS)
    assert artifact.present and artifact.details == {}
    assert not artifact.finish("anything", lambda: False, STATUS)  # a repeat: idempotent, nothing checked


@pytest.mark.parametrize("storage_type", ["s3", "reference", "link", "error"])
def test_only_object_artifacts_can_be_finished(storage_type):
    with pytest.raises(InputError, match="Only object artifacts can be finished"):
        new_artifact(storage_type).finish("u1", lambda: True, STATUS)


@pytest.mark.parametrize("name", ["", "..", "../x", "a/../b", "a/..", "x" * 1025])
def test_names_that_could_leave_their_prefix_are_refused(name):
    assert name_problem(name)


@pytest.mark.parametrize("name", ["public/logs/live.log", "a..b", ".hidden", "with space", "x" * 1024])
def test_ordinary_names_are_accepted(name):
    assert name_problem(name) is None
