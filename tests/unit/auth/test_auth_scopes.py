"""Scope satisfaction, expressions, templates, normalization and roles (§7)."""

import pytest

from taskjournal.shared.auth import (
    Roles,
    ScopeSet,
    TemplateError,
    is_valid_scope,
    normalize,
    render,
    satisfies,
    scope_satisfied,
    template_params,
    unsatisfied,
)
from taskjournal.shared.auth.scopes import insufficient_scopes_message

CREATE_TASK = {"AllOf": [
    {"each": "<scope>", "for": "scope", "in": "scopes"},
    {"each": "queue:route:<route>", "for": "route", "in": "routes"},
    "queue:create-task:project:<projectId>",
    "queue:scheduler-id:<schedulerId>",
    {"AnyOf": [{"each": "queue:create-task:<priority>:<provisionerId>/<workerType>",
                "for": "priority", "in": "priorities"}]},
]}


@pytest.mark.parametrize("held, required, expected", [
    ("a", "a", True),
    ("a", "b", False),
    ("*", "anything", True),
    ("*", "", True),
    ("queue:*", "queue:", True),
    ("queue:*", "queue:get-task:x", True),
    ("queue:*", "queu", False),
    ("foo:**", "foo:*abc", True),
    ("foo:**", "foo:*", True),
    ("foo:**", "foo:abc", False),
    ("foo:*", "foo:*", True),
    ("foo:a*b", "foo:axb", False),
    ("foo:a", "foo:*", False),
])
def test_single_scope_satisfaction(held, required, expected):
    assert scope_satisfied(held, required) is expected
    assert satisfies([held], required) is expected
    assert ScopeSet([held]).has(required) is expected


def test_scope_validity():
    assert is_valid_scope("queue:get-artifact:public/a b~!")
    assert is_valid_scope("")
    assert not is_valid_scope("caf\u00e9")
    assert not is_valid_scope("a\nb")
    assert not is_valid_scope(5)


def test_expressions():
    held = ScopeSet(["a", "b:*"])
    assert satisfies(held, {"AllOf": []})
    assert not satisfies(held, {"AnyOf": []})
    assert satisfies(held, {"AllOf": ["a", "b:x", {"AnyOf": ["c", "b:y"]}]})
    assert not satisfies(held, {"AllOf": ["a", {"AnyOf": ["c", "d"]}]})
    assert satisfies(["a"], {"AnyOf": ["x", {"AllOf": ["a"]}]})


@pytest.mark.parametrize("expr", [{"AllOf": "a"}, {"AllOf": [], "AnyOf": []}, {"OneOf": []}, 5, ["a"]])
def test_invalid_expressions_are_rejected(expr):
    with pytest.raises(ValueError):
        satisfies(["*"], expr)


def test_unsatisfied_reduction():
    held = ["a", "b:*"]
    assert unsatisfied(held, "a") is None
    assert unsatisfied(held, "c") == "c"
    assert unsatisfied(held, {"AllOf": ["a", "c"]}) == "c"
    assert unsatisfied(held, {"AllOf": ["c", "d", "b:q"]}) == {"AllOf": ["c", "d"]}
    assert unsatisfied(held, {"AnyOf": ["c", "b:x"]}) is None
    assert unsatisfied(held, {"AnyOf": ["c", {"AllOf": ["a", "d"]}]}) == {"AnyOf": ["c", "d"]}
    assert unsatisfied(held, {"AnyOf": [{"AllOf": ["a", "d"]}]}) == "d"
    assert unsatisfied(held, {"AnyOf": []}) == {"AnyOf": []}


def test_insufficient_scopes_message_with_nested_expressions():
    message = insufficient_scopes_message("c", {"AnyOf": ["x", "y"]}, {"AnyOf": ["x", "y"]})
    assert '```\n{\n  "AnyOf": [\n    "x",\n    "y"\n  ]\n}\n```' in message
    assert message.startswith("Client ID c does not have sufficient scopes and is missing the following scopes:\n\n")


# ----------------------------------------------------------------- templates


def test_render_string_parameters():
    assert render("queue:list-artifacts:<taskId>:<runId>", {"taskId": "T", "runId": 0}) == "queue:list-artifacts:T:0"
    assert render("plain", {}) == "plain"
    assert render("<a><a>", {"a": "x"}) == "xx"


def test_render_for_each_splices_into_the_enclosing_list():
    params = {
        "scopes": ["s1", "s2"], "routes": ["r"], "projectId": "p", "schedulerId": "sch",
        "priorities": ["high", "normal"], "provisionerId": "prov", "workerType": "wt",
    }
    assert render(CREATE_TASK, params) == {"AllOf": [
        "s1", "s2", "queue:route:r", "queue:create-task:project:p", "queue:scheduler-id:sch",
        {"AnyOf": ["queue:create-task:high:prov/wt", "queue:create-task:normal:prov/wt"]},
    ]}
    assert render(CREATE_TASK, {**params, "scopes": [], "routes": []})["AllOf"][0] == "queue:create-task:project:p"


def test_render_if_then_else():
    template = {"AnyOf": [
        {"if": "public", "then": "queue:get-artifact:public"},
        {"if": "private", "then": {"AllOf": ["x", "<name>"]}, "else": "y"},
    ]}
    assert render(template, {"public": True, "private": True, "name": "n"}) == {
        "AnyOf": ["queue:get-artifact:public", {"AllOf": ["x", "n"]}]}
    assert render(template, {"public": False, "private": False, "name": "n"}) == {"AnyOf": ["y"]}
    assert render({"if": "p", "then": "a"}, {"p": False}) is None
    assert render({"if": "p", "then": "a", "else": {"AllOf": []}}, {"p": False}) == {"AllOf": []}


@pytest.mark.parametrize("template, params", [
    ("a:<missing>", {}),
    ("a:<x>", {"x": None}),
    ("a:<x>", {"x": True}),
    ({"AllOf": [{"for": "n", "in": "names", "each": "a:<n>"}]}, {}),
    ({"AllOf": [{"for": "n", "in": "names", "each": "a:<n>"}]}, {"names": "abc"}),
    ({"AllOf": [{"for": "n", "in": "names", "each": "a:<n>"}]}, {"names": [{"x": 1}]}),
    ({"for": "n", "in": "names", "each": "a:<n>"}, {"names": []}),
    ({"if": "p", "then": "a"}, {"p": "true"}),
    ({"if": "p", "then": "a"}, {}),
    ({"AllOf": "a"}, {}),
    ({"Nope": []}, {}),
])
def test_render_errors(template, params):
    with pytest.raises(TemplateError):
        render(template, params)
    with pytest.raises(KeyError):
        render(template, params)


def test_template_params():
    assert template_params(CREATE_TASK) == {
        "scopes", "routes", "projectId", "schedulerId", "priorities", "provisionerId", "workerType"}
    get_artifact = {"AllOf": [{"for": "name", "in": "names", "each": "queue:get-artifact:<name>"}]}
    assert template_params(get_artifact) == {"names"}
    assert template_params({"if": "public", "then": "a:<x>", "else": {"AnyOf": ["<y>"]}}) == {"public", "x", "y"}
    assert template_params({"AllOf": ["<name>", {"for": "name", "in": "names", "each": "<name>"}]}) == {
        "name", "names"}


# ----------------------------------------------------------------- normalize


def test_normalize():
    assert normalize(["b", "a", "a"]) == ["a", "b"]
    assert normalize(["q:1", "q:*", "q:2", "r"]) == ["q:*", "r"]
    assert normalize(["a*", "a**", "ab", "b"]) == ["a*", "b"]
    assert normalize(["x", "*", "y:*"]) == ["*"]
    assert normalize(["a:*", "a:b:*", "a:b:c"]) == ["a:*"]
    assert normalize([]) == []


def test_scope_set_is_normalized_and_iterable():
    held = ScopeSet(["q:1", "q:*", "z"])
    assert list(held) == ["q:*", "z"] == held.to_list()
    assert len(held) == 2
    assert "q:anything" in held and "y" not in held
    assert held == ScopeSet(["z", "q:*"]) and hash(held) == hash(ScopeSet(["z", "q:*"]))


# --------------------------------------------------------------------- roles


PROJECT_ROLES = {
    "project-admin:*": ["auth:create-role:project-<..>/*", "secrets:get:project/<..>/*"],
}


def test_parameterised_role_substitutes_the_parameter():
    expanded = Roles(PROJECT_ROLES).expand(["assume:project-admin:zap"])
    assert expanded == ["assume:project-admin:zap", "auth:create-role:project-zap/*", "secrets:get:project/zap/*"]


def test_parameter_ending_in_star_drops_the_rest_of_the_scope():
    expanded = Roles(PROJECT_ROLES).expand(["assume:project-admin:ops*"])
    assert "auth:create-role:project-ops*" in expanded
    assert "secrets:get:project/ops*" in expanded


def test_star_scope_covering_a_parameterised_role_prefix():
    expanded = Roles(PROJECT_ROLES).expand(["assume:proj*"])
    assert expanded == ["assume:proj*", "auth:create-role:project-*", "secrets:get:project/*"]


def test_star_scope_assumes_every_matching_plain_role():
    roles = Roles({"repo:a": ["x"], "repo:b": ["y"], "other": ["z"]})
    assert roles.expand(["assume:repo:*"]) == ["assume:repo:*", "x", "y"]
    assert roles.expand(["as*"]) == ["as*", "x", "y", "z"]
    assert roles.expand(["*", "assume:repo:a"]) == ["*"]


def test_role_expansion_is_recursive_and_terminates_on_cycles():
    roles = Roles({
        "a": ["assume:b", "s:a"],
        "b": ["assume:a", "assume:worker:<..>", "s:b"],
        "worker:*": ["queue:claim:<..>"],
    })
    assert roles.expand(["assume:a"]) == [
        "assume:a", "assume:b", "assume:worker:<..>", "queue:claim:<..>", "s:a", "s:b"]
    assert roles.expand(["assume:worker:p/w"]) == ["assume:worker:p/w", "queue:claim:p/w"]


def test_role_expansion_keeps_plain_scopes_and_normalizes():
    roles = Roles({"anonymous": ["queue:get-task:*", "queue:get-task:x"]})
    assert roles.expand(["assume:anonymous", "queue:get-task:y", "b"]) == ["assume:anonymous", "b", "queue:get-task:*"]


def test_expansion_results_are_not_shared_between_calls():
    roles = Roles({"a": ["x"]})
    first = roles.expand(["assume:a"])
    first.append("mutated")
    assert roles.expand(["assume:a"]) == ["assume:a", "x"]


def test_runaway_parameterised_roles_are_reported():
    roles = Roles({"a*": ["assume:a<..>x"]})
    with pytest.raises(ValueError):
        roles.expand(["assume:ab"])


def test_invalid_role_scopes_are_rejected():
    with pytest.raises(ValueError):
        Roles({"r": ["bad\n"]})
