"""Test helpers: a frozen official Python client and converters from what it
sends to AuthRequests."""

from __future__ import annotations

import base64
import json
import urllib.parse
from dataclasses import dataclass

import mohawk
import mohawk.base
import mohawk.bewit
import taskcluster
import taskcluster.utils

from taskjournal.shared.auth import AuthRequest, Authenticator, ClientStore, Roles, certificate_signature, host_and_port


@dataclass
class Captured:
    method: str
    url: str
    payload: str | None
    headers: dict


class _Response:
    status_code = 200

    def raise_for_status(self):
        pass

    def json(self):
        return {}


class FrozenClient:
    """Drives the official client with a fixed Hawk ts/nonce and no network."""

    def __init__(self, monkeypatch):
        self._monkeypatch = monkeypatch
        self.requests: list[Captured] = []
        self.freeze(1700000000, b"Xy12Ab")
        monkeypatch.setattr(taskcluster.utils, "makeSingleHttpRequest", self._record)

    def freeze(self, ts: int, nonce: bytes):
        self._monkeypatch.setattr(mohawk.base, "utc_now", lambda offset_in_seconds=0.0: ts)
        self._monkeypatch.setattr(mohawk.base, "random_string", lambda n: nonce[:n].decode())

    def _record(self, method, url, payload, headers, session=None):
        # The real makeSingleHttpRequest upper-cases the method too.
        self.requests.append(Captured(method.upper(), url, payload, dict(headers)))
        return _Response()

    def queue(self, root_url="https://tc.example.com", **options) -> taskcluster.Queue:
        return taskcluster.Queue({"rootUrl": root_url, "maxRetries": 0, **options})

    @property
    def last(self) -> Captured:
        return self.requests[-1]


def auth_request(captured: Captured) -> AuthRequest:
    """The AuthRequest a server would build for a captured client request."""
    request = url_request(captured.url, captured.method)
    request.authorization = captured.headers.get("Authorization")
    request.content_type = captured.headers.get("Content-Type")
    request.body = captured.payload.encode() if captured.payload else b""
    return request


def url_request(url: str, method: str = "GET") -> AuthRequest:
    parts = urllib.parse.urlsplit(url)
    resource = parts.path + ("?" + parts.query if parts.query else "")
    host, port = host_and_port(parts.netloc, parts.scheme == "https", {})
    return AuthRequest(method=method, resource=resource, host=host, port=port)


def make_authenticator(clients, roles=None, now=1700000000.0) -> Authenticator:
    return Authenticator(ClientStore(clients), Roles(roles or {}), clock=lambda: now)


NOW = 1700000000


def ext_value(ext: dict, urlsafe: bool = True) -> str:
    """An ext attribute as the Python (URL-safe) or Go (standard) client encodes it."""
    raw = json.dumps(ext, separators=(",", ":")).encode()
    return (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()


def hawk_request(client_id: str, key: str, url: str, method: str = "GET", *, ext: str | None = None,
                 ts: int = NOW, nonce: str = "n0nc3Z", content: bytes | None = None,
                 content_type: str | None = None, with_hash: bool = True, app: str | None = None) -> AuthRequest:
    """A request signed by mohawk (the library the official client uses)."""
    sender = mohawk.Sender(
        {"id": client_id, "key": key, "algorithm": "sha256"}, url, method,
        content=content if content is not None else (b"" if with_hash else mohawk.base.EmptyValue),
        content_type=content_type or ("" if with_hash else mohawk.base.EmptyValue),
        always_hash_content=with_hash, nonce=nonce, ext=ext, app=app, _timestamp=ts)
    request = url_request(url, method)
    request.authorization = sender.request_header
    request.content_type = content_type
    request.body = content or b""
    return request


def signed_certificate(issuer_id: str, issuer_token: str, name: str | None = None, *,
                       start: int = (NOW - 60) * 1000, expiry: int = (NOW + 3600) * 1000,
                       scopes=("queue:get-task:*",), seed: str = "s" * 44, **extra) -> dict:
    """A correctly signed certificate; ``extra`` members are added before signing."""
    cert = {"version": 1, "scopes": list(scopes), "start": start, "expiry": expiry, "seed": seed, **extra}
    if name:
        cert["issuer"] = issuer_id
    cert["signature"] = certificate_signature(cert, name or issuer_id, issuer_token)
    return cert


def bewit_url(client_id: str, key: str, url: str, exp: int, ext: str | None = None) -> str:
    """``url`` with a bewit appended, built with mohawk like the official client."""
    resource = mohawk.base.Resource(
        credentials={"id": client_id, "key": key, "algorithm": "sha256"},
        method="GET", url=url, timestamp=exp, nonce="", ext=ext)
    bewit = mohawk.bewit.get_bewit(resource).rstrip("=")
    return f"{url}{'&' if '?' in url else '?'}bewit={bewit}"
