"""Property tests for scope satisfaction and normalization."""

from hypothesis import given, settings
from hypothesis import strategies as st

from taskjournal.shared.auth import Roles, ScopeSet, normalize, satisfies, scope_satisfied, unsatisfied

# A tiny alphabet makes prefixes, stars and duplicates collide often.
scope = st.text(alphabet="ab:*", max_size=5)
scopes = st.lists(scope, max_size=8)
expression = st.recursive(
    scope,
    lambda inner: st.one_of(
        st.builds(lambda xs: {"AllOf": xs}, st.lists(inner, max_size=4)),
        st.builds(lambda xs: {"AnyOf": xs}, st.lists(inner, max_size=4)),
    ),
    max_leaves=10,
)


def held_satisfies(held, required) -> bool:
    """Definition of §7.2, with no precomputation."""
    return any(scope_satisfied(h, required) for h in held)


@settings(max_examples=300, deadline=None)
@given(scopes, st.lists(scope, max_size=6))
def test_all_of_equals_every_individual_check(held, required):
    expected = all(held_satisfies(held, r) for r in required)
    assert satisfies(held, {"AllOf": required}) is expected
    assert satisfies(ScopeSet(held), {"AllOf": required}) is expected
    assert all(satisfies(held, r) is held_satisfies(held, r) for r in required)


@settings(max_examples=300, deadline=None)
@given(scopes, st.lists(scope, max_size=6))
def test_any_of_equals_some_individual_check(held, required):
    assert satisfies(ScopeSet(held), {"AnyOf": required}) is any(held_satisfies(held, r) for r in required)


@settings(max_examples=300, deadline=None)
@given(scopes, scope)
def test_normalize_never_changes_what_a_set_satisfies(held, required):
    normalized = normalize(held)
    assert held_satisfies(normalized, required) is held_satisfies(held, required)
    assert set(normalized) <= set(held)
    assert normalize(normalized) == normalized == sorted(normalized)


@settings(max_examples=200, deadline=None)
@given(scopes, expression)
def test_unsatisfied_is_none_exactly_when_satisfied(held, expr):
    rest = unsatisfied(held, expr)
    assert (rest is None) is satisfies(held, expr)
    if rest is not None:
        assert not satisfies(held, rest)


@settings(max_examples=200, deadline=None)
@given(scopes, st.dictionaries(st.text(alphabet="ab:*", max_size=3), scopes, max_size=3))
def test_expansion_only_adds_authority(held, role_map):
    roles = {role_id: [s for s in role_scopes if "<..>" not in s] for role_id, role_scopes in role_map.items()}
    expanded = Roles(roles).expand(held)
    assert all(held_satisfies(expanded, s) for s in held)
    assert Roles(roles).expand(expanded) == expanded
