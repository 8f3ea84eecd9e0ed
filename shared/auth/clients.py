"""Permanent clients and their store, loadable from a static JSON config."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

from .scopes import is_valid_scope


@dataclass(frozen=True)
class Client:
    client_id: str
    access_token: str
    scopes: tuple[str, ...]
    expires_ms: int | None = None
    disabled: bool = False

    def expired(self, now_ms: float) -> bool:
        return self.expires_ms is not None and self.expires_ms < now_ms


class ClientStore:
    """In-memory clients by clientId."""

    def __init__(self, clients: Iterable[Client] = ()):
        self._clients: dict[str, Client] = {}
        for client in clients:
            self.add(client)

    def get(self, client_id: str) -> Client | None:
        return self._clients.get(client_id)

    def add(self, client: Client) -> None:
        """Add or replace a client."""
        self._clients[client.client_id] = client

    def __len__(self) -> int:
        return len(self._clients)

    @classmethod
    def load_file(cls, path) -> list[Client]:
        """The clients of a config file (see ``load_config_file``)."""
        return load_config_file(path)[0]


def _parse_expires(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return int(moment.timestamp() * 1000)
    raise ValueError(f"invalid expires value {value!r}")


def _scopes(value, owner: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(is_valid_scope(s) for s in value):
        raise ValueError(f"{owner}: scopes must be a list of valid scopes")
    return tuple(value)


def client_from_config(entry: dict) -> Client:
    client_id = entry["clientId"]
    token = entry["accessToken"]
    if not isinstance(client_id, str) or not client_id or not isinstance(token, str) or not token:
        raise ValueError("clientId and accessToken must be non-empty strings")
    return Client(
        client_id=client_id,
        access_token=token,
        scopes=_scopes(entry.get("scopes", []), client_id),
        expires_ms=_parse_expires(entry.get("expires")),
        disabled=bool(entry.get("disabled", False)),
    )


def load_config_file(path) -> tuple[list[Client], dict[str, list[str]]]:
    """Read ``{"clients": [...], "roles": [{"roleId", "scopes"}]}``."""
    with open(path, "rb") as f:
        config = json.load(f)
    clients = [client_from_config(entry) for entry in config.get("clients", [])]
    roles = {}
    for role in config.get("roles", []):
        role_id = role["roleId"]
        roles[role_id] = list(_scopes(role.get("scopes", []), role_id))
    return clients, roles
