"""What a handler gets: decoded parameters, query, validated body, the
caller's authority, and a way to run blocking store calls off the loop."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from taskjournal.shared import actor as actors
from taskjournal.shared.auth import scopes as scope_rules
from taskjournal.shared.auth.hawk import AuthResult

from .errors import ApiError

if TYPE_CHECKING:  # app.py imports this module
    from .app import GatewayParts
    from .routing import Endpoint


@dataclass
class Context:
    endpoint: "Endpoint"
    params: dict[str, str]
    query: dict[str, str]
    body: Any  # the parsed JSON body, validated against the endpoint's schema once the handler runs
    services: "GatewayParts"
    authenticate: Callable[[], AuthResult]  # computed at most once
    request_id: str = ""  # the response's x-for-request-id, recorded with every event the request causes
    _auth: AuthResult | None = field(default=None, init=False)

    @property
    def auth(self) -> AuthResult:
        if self._auth is None:
            self._auth = self.authenticate()
        return self._auth

    def authorize(self, **extra) -> None:
        """Check the endpoint's scope expression rendered with URL params and `extra`."""
        require(self.auth, scope_rules.render(self.endpoint.scopes, {**self.params, **extra}))

    def actor(self) -> actors.Actor:
        """Who this request acts as (ADR 0015): its client, the request id and,
        for temporary credentials, their issuer."""
        return actors.client(self.auth.client_id, self.request_id, self.auth.issuer)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """fn(*args) on the store's thread pool, with this request's actor."""
        return await asyncio.get_running_loop().run_in_executor(self.services.executor, actors.in_context(fn, *args))


def require(auth: AuthResult, expression: Any) -> None:
    if auth.status == "auth-failed":
        raise ApiError("AuthenticationFailed", 401, auth.message or "", {"WWW-Authenticate": "hawk"})
    if scope_rules.satisfies(auth.scopes, expression):
        return
    missing = scope_rules.unsatisfied(auth.scopes, expression)
    client = auth.client_id if auth.status == "auth-success" else None
    raise ApiError("InsufficientScopes", 403, scope_rules.insufficient_scopes_message(client, expression, missing))
