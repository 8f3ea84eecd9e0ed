"""Who caused an event (ADR 0015). Every event the Journal saves carries an
`actor`: the client whose request caused it (with the request id, and for
temporary credentials the issuer), or the service that acted on its own.
Events stored before actors were recorded read as UNKNOWN.

The actor travels with the call, not through every command's signature: the
caller sets it around a Journal command (`acting`, or `run_as` for a call
handed to a thread pool) and Journal.save stamps it on the new events, on the
calling thread, before a group commit may carry them to another one. The
gateway sets it once per request; calls it hands to its thread pool copy the
request's context (`in_context`)."""

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

Actor = dict[str, str]  # JSON: {"kind": "client", "clientId", "requestId"[, "issuer"]} | {"kind": "service", ...}
UNKNOWN: Actor = {"kind": "unknown"}
SERVICES = ("claim-resolver", "scheduler", "dependency-resolver", "taskjournal-cli")

# the actor, or a function that gives it when first needed (a request's client is known once authenticated)
_current: contextvars.ContextVar[Actor | Callable[[], Actor]] = contextvars.ContextVar("taskjournal_actor",
                                                                                       default=UNKNOWN)
T = TypeVar("T")


def client(client_id: str | None, request_id: str, issuer: str | None = None) -> Actor:
    """A request's actor; `client_id` None: a request without credentials."""
    actor = {"kind": "client", "clientId": client_id or "anonymous", "requestId": request_id}
    if issuer is not None and issuer != client_id:
        actor["issuer"] = issuer
    return actor


def service(name: str) -> Actor:
    if name not in SERVICES:
        raise ValueError(f"unknown service {name!r}")
    return {"kind": "service", "service": name}


def current() -> Actor:
    found = _current.get()
    return found() if callable(found) else found


@contextmanager
def acting(actor: Actor | Callable[[], Actor]) -> Iterator[None]:
    token = _current.set(actor)
    try:
        yield
    finally:
        _current.reset(token)


def run_as(actor: Actor, fn: Callable[..., T], *args: Any) -> T:
    """Call `fn(*args)` with `actor` current (for a call run on another thread)."""
    with acting(actor):
        return fn(*args)


def in_context(fn: Callable[..., T], *args: Any) -> Callable[[], T]:
    """`fn(*args)` to run on another thread with the caller's actor (its context)."""
    context = contextvars.copy_context()
    return lambda: context.run(fn, *args)


def describe(actor: Actor) -> str:
    """One line for people: `client root (request ...)`, `service scheduler`, `unknown`."""
    if actor.get("kind") == "client":
        via = f" via {actor['issuer']}" if "issuer" in actor else ""
        return f"{actor['clientId']}{via}"
    if actor.get("kind") == "service":
        return f"service {actor['service']}"
    return "unknown"
