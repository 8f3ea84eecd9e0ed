"""Scopes, scope expressions, expression templates and role expansion (spec §7)."""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from functools import lru_cache
from typing import Iterable, Iterator, Mapping

from ._js import is_number, number_str

_VALID_SCOPE = re.compile(r"[\x20-\x7e]*\Z")
_TEMPLATE_PARAM = re.compile(r"<([a-zA-Z][a-zA-Z0-9_]*)>")
_PARAM_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*\Z")
_ROLE_PARAM = "<..>"

# A runaway parameterised role (e.g. "a*" granting "assume:a<..>x") never
# reaches a fixed point; stop instead of eating all memory and time.
MAX_EXPANDED_SCOPES = 100_000
MAX_EXPANDED_CHARACTERS = 16_000_000


def is_valid_scope(s) -> bool:
    return isinstance(s, str) and _VALID_SCOPE.match(s) is not None


def scope_satisfied(held: str, required: str) -> bool:
    if held == required:
        return True
    return held.endswith("*") and required.startswith(held[:-1])


# ---------------------------------------------------------------- normalize


def _minimal_prefixes(prefixes: Iterable[str]) -> list[str]:
    """Star prefixes that no shorter prefix in the input already covers."""
    result: list[str] = []
    # In sorted order every string between q and p starts with q when q is a
    # prefix of p, so comparing with the last kept prefix is enough.
    for prefix in sorted(set(prefixes)):
        if not result or not prefix.startswith(result[-1]):
            result.append(prefix)
    return result


def normalize(scopes: Iterable[str]) -> list[str]:
    """Drop duplicates and scopes implied by a star scope; sort plainly."""
    unique = set(scopes)
    prefixes = _minimal_prefixes(s[:-1] for s in unique if s.endswith("*"))
    if not prefixes:
        return sorted(unique)
    # Keep each minimal star scope itself. Read literally, §7.6 would drop
    # both "a*" and "a**" (each covers the other), losing what "a*" grants.
    keep = {p + "*" for p in prefixes}
    stars = tuple(prefixes)
    return sorted(s for s in unique if s in keep or not s.startswith(stars))


# ----------------------------------------------------------------- ScopeSet


class ScopeSet:
    """Immutable, normalized set of held scopes, built once, queried often.

    ``scope in scope_set`` tests satisfaction (§7.2), not literal membership.
    """

    __slots__ = ("_scopes", "_exact", "_prefixes", "_all")

    def __init__(self, scopes: Iterable[str] = ()):
        normalized = tuple(normalize(scopes))
        self._scopes = normalized
        self._exact = frozenset(normalized)
        self._prefixes = tuple(s[:-1] for s in normalized if s.endswith("*"))
        self._all = "*" in self._exact

    def has(self, scope: str) -> bool:
        """Whether some held scope satisfies ``scope``."""
        return self._all or scope in self._exact or scope.startswith(self._prefixes)

    __contains__ = has

    def satisfies(self, expr) -> bool:
        return _satisfies(self, expr)

    def __iter__(self) -> Iterator[str]:
        return iter(self._scopes)

    def __len__(self) -> int:
        return len(self._scopes)

    def __eq__(self, other) -> bool:
        if isinstance(other, ScopeSet):
            return self._scopes == other._scopes
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._scopes)

    def __repr__(self) -> str:
        return f"ScopeSet({list(self._scopes)!r})"

    def to_list(self) -> list[str]:
        return list(self._scopes)


def _as_scope_set(scopes) -> ScopeSet:
    return scopes if isinstance(scopes, ScopeSet) else ScopeSet(scopes)


# --------------------------------------------------------------- expressions


def _operands(expr) -> tuple[str, list | tuple]:
    """Split an AllOf/AnyOf expression, rejecting anything else."""
    if isinstance(expr, dict) and len(expr) == 1:
        op, items = next(iter(expr.items()))
        if op in ("AllOf", "AnyOf") and isinstance(items, (list, tuple)):
            return op, items
    raise ValueError(f"invalid scope expression: {expr!r}")


def _satisfies(held: ScopeSet, expr) -> bool:
    if isinstance(expr, str):
        return held.has(expr)
    op, items = _operands(expr)
    if op == "AllOf":
        for item in items:
            if not _satisfies(held, item):
                return False
        return True
    for item in items:
        if _satisfies(held, item):
            return True
    return False


def satisfies(scopes: ScopeSet | Iterable[str], expr) -> bool:
    """Whether the held scopes satisfy a scope expression (§7.3)."""
    return _satisfies(_as_scope_set(scopes), expr)


def _unsatisfied(held: ScopeSet, expr):
    if isinstance(expr, str):
        return None if held.has(expr) else expr
    op, items = _operands(expr)
    reduced = [_unsatisfied(held, item) for item in items]
    if op == "AllOf":
        missing = [r for r in reduced if r is not None]
        if not missing:
            return None
        return missing[0] if len(missing) == 1 else {"AllOf": missing}
    if any(r is None for r in reduced):
        return None
    return reduced[0] if len(reduced) == 1 else {"AnyOf": reduced}


def unsatisfied(scopes: ScopeSet | Iterable[str], expr):
    """The part of ``expr`` the scopes fail to satisfy, or None (§7.5)."""
    return _unsatisfied(_as_scope_set(scopes), expr)


# ----------------------------------------------------------------- templates


class TemplateError(KeyError):
    """A template is malformed or its parameters are missing or mistyped."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@lru_cache(maxsize=2048)
def _split_template(text: str) -> tuple[str, ...]:
    # Odd positions hold parameter names.
    return tuple(_TEMPLATE_PARAM.split(text))


def _param(params: Mapping, name: str):
    try:
        return params[name]
    except KeyError:
        raise TemplateError(f"missing template parameter '{name}'") from None


def _param_text(params: Mapping, name: str) -> str:
    value = _param(params, name)
    if isinstance(value, str):
        return value
    if is_number(value):
        return number_str(value)
    raise TemplateError(f"template parameter '{name}' must be a string or a number")


def _render_string(text: str, params: Mapping) -> str:
    parts = _split_template(text)
    if len(parts) == 1:
        return text
    out = list(parts)
    for i in range(1, len(parts), 2):
        out[i] = _param_text(params, parts[i])
    return "".join(out)


def _template_kind(node) -> str:
    if isinstance(node, str):
        return "string"
    if isinstance(node, dict):
        keys = set(node)
        if keys == {"AllOf"} or keys == {"AnyOf"}:
            if isinstance(next(iter(node.values())), list):
                return "list"
        elif keys == {"for", "in", "each"}:
            names_ok = all(isinstance(node[k], str) and _PARAM_NAME.match(node[k]) for k in ("for", "in"))
            if names_ok and isinstance(node["each"], str):
                return "for"
        elif keys == {"if", "then"} or keys == {"if", "then", "else"}:
            if isinstance(node["if"], str) and _PARAM_NAME.match(node["if"]):
                return "if"
    raise TemplateError(f"invalid scope expression template: {node!r}")


def _render(node, params: Mapping, in_list: bool):
    """Render one node: an expression, None (dropped) or a list to splice."""
    kind = _template_kind(node)
    if kind == "string":
        return _render_string(node, params)
    if kind == "list":
        op, children = next(iter(node.items()))
        out = []
        for child in children:
            rendered = _render(child, params, True)
            if isinstance(rendered, list):
                out.extend(rendered)
            elif rendered is not None:
                out.append(rendered)
        return {op: out}
    if kind == "for":
        if not in_list:
            raise TemplateError("'for' is only valid inside AllOf or AnyOf")
        values = _param(params, node["in"])
        if not isinstance(values, (list, tuple)):
            raise TemplateError(f"template parameter '{node['in']}' must be an array")
        nested = dict(params)
        out = []
        for value in values:
            nested[node["for"]] = value
            out.append(_render_string(node["each"], nested))
        return out
    condition = _param(params, node["if"])
    if not isinstance(condition, bool):
        raise TemplateError(f"template parameter '{node['if']}' must be a boolean")
    branch = node["then"] if condition else node.get("else")
    if branch is None:
        return None
    if _template_kind(branch) == "for":
        raise TemplateError("'then'/'else' must be a scope expression template")
    return _render(branch, params, False)


def render(template, params: Mapping):
    """Render a scope expression template (§7.4); None means "no scopes needed"."""
    return _render(template, params, False)


def template_params(template) -> set[str]:
    """Every parameter a template reads (loop variables excluded)."""
    kind = _template_kind(template)
    if kind == "string":
        return set(_split_template(template)[1::2])
    if kind == "list":
        names: set[str] = set()
        for child in next(iter(template.values())):
            names |= template_params(child)
        return names
    if kind == "for":
        inner = template_params(template["each"]) - {template["for"]}
        return inner | {template["in"]}
    names = {template["if"]} | template_params(template["then"])
    if "else" in template:
        names |= template_params(template["else"])
    return names


# --------------------------------------------------------------------- roles


def _substitute(scope: str, param: str) -> str:
    i = scope.find(_ROLE_PARAM)
    if i < 0:
        return scope
    if param.endswith("*"):
        # A star parameter already covers whatever followed <..>.
        return scope[:i] + param
    return scope[:i] + param + scope[i + len(_ROLE_PARAM):]


class Roles:
    """Role definitions and memoized role expansion (§7.6)."""

    def __init__(self, mapping: Mapping[str, Iterable[str]] | None = None, cache_size: int = 4096):
        self._plain: dict[str, tuple[str, ...]] = {}
        self._parameterised: list[tuple[str, tuple[str, ...]]] = []
        for role_id, scopes in (mapping or {}).items():
            scopes = tuple(scopes)
            if not isinstance(role_id, str) or not all(is_valid_scope(s) for s in scopes):
                raise ValueError(f"invalid role {role_id!r}")
            pattern = "assume:" + role_id
            if role_id.endswith("*"):
                self._parameterised.append((pattern[:-1], scopes))
            else:
                self._plain[pattern] = scopes
        self._patterns = sorted(self._plain)
        self._expand_cached = lru_cache(maxsize=cache_size)(self._expand_frozen)

    def expand(self, scopes: Iterable[str]) -> list[str]:
        """The normalized fixed point of ``scopes`` under role assumption."""
        return list(self._expand_cached(frozenset(scopes)))

    def _expand_frozen(self, scopes: frozenset) -> tuple[str, ...]:
        if "*" in scopes:
            return ("*",)  # everything any role grants is covered anyway
        result = set(scopes)
        todo = list(scopes)
        size = 0
        while todo:
            for granted in self._grants(todo.pop()):
                if granted not in result:
                    result.add(granted)
                    todo.append(granted)
                    size += len(granted)
            if len(result) > MAX_EXPANDED_SCOPES or size > MAX_EXPANDED_CHARACTERS:
                raise ValueError("role expansion does not terminate")
        return tuple(normalize(result))

    def _grants(self, scope: str) -> Iterator[str]:
        """Scopes granted directly (one step) by holding ``scope``."""
        star = scope.endswith("*")
        if star:
            # "assume:repo:*", "as*", ... assume every matching plain role.
            prefix = scope[:-1]
            i = bisect_left(self._patterns, prefix)
            while i < len(self._patterns) and self._patterns[i].startswith(prefix):
                yield from self._plain[self._patterns[i]]
                i += 1
        else:
            yield from self._plain.get(scope, ())
        for prefix, role_scopes in self._parameterised:
            if scope.startswith(prefix):
                param = scope[len(prefix):]
            elif star and prefix.startswith(scope[:-1]):
                param = "*"
            else:
                continue
            for role_scope in role_scopes:
                yield _substitute(role_scope, param)


# ------------------------------------------------------------------ messages


def _format_detail(value) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)


def insufficient_scopes_message(client_id: str | None, required_expr, unsatisfied_expr) -> str:
    """The InsufficientScopes message of §8.4 (without the error footer)."""
    required = _format_detail(required_expr)
    if client_id is None:
        return (
            "This request requires Taskcluster credentials that satisfy the following scope expression:\n"
            f"\n```\n{required}\n```"
        )
    return (
        f"Client ID {client_id} does not have sufficient scopes and is missing the following scopes:\n"
        f"\n```\n{_format_detail(unsatisfied_expr)}\n```\n"
        "\nThis request requires the client to satisfy the following scope expression:\n"
        f"\n```\n{required}\n```"
    )
