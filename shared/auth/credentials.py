"""Temporary credentials: certificates, signatures and derived tokens (spec §4)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid

from ._js import is_truthy, number_str

MAX_CERTIFICATE_SPAN_MS = 31 * 24 * 60 * 60 * 1000
SEED_LENGTH = 44


def _hmac_sha256(key: str, message: str) -> bytes:
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).digest()


def slug_id() -> str:
    """A random v4 slugid: a uuid4 in URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode()[:-2]


def temporary_access_token(issuer_token: str, seed: str) -> str:
    """The temporary accessToken derived from the issuer's token and seed (§4.3)."""
    digest = _hmac_sha256(issuer_token, seed)
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def certificate_signature(cert: dict, client_id: str, issuer_token: str) -> str:
    """Signature of a certificate (§4.2); ``client_id`` is the Hawk id."""
    lines = ["version:1"]
    if is_truthy(cert.get("issuer")):
        lines += ["clientId:" + client_id, "issuer:" + cert["issuer"]]
    lines += [
        "seed:" + cert["seed"],
        "start:" + number_str(cert["start"]),
        "expiry:" + number_str(cert["expiry"]),
        "scopes:",
    ]
    lines += cert["scopes"]
    return base64.b64encode(_hmac_sha256(issuer_token, "\n".join(lines))).decode()


def create_temporary_credentials(
    issuer_id: str,
    issuer_token: str,
    start_ms: int,
    expiry_ms: int,
    scopes: list[str],
    name: str | None = None,
    seed: str | None = None,
) -> dict:
    """Issue temporary credentials (§4.6); named when ``name`` is given."""
    if expiry_ms - start_ms > MAX_CERTIFICATE_SPAN_MS:
        raise ValueError("temporary credentials cannot last longer than 31 days")
    if not all(isinstance(s, str) for s in scopes):
        raise ValueError("scopes must be strings")
    if name is not None and name == issuer_id:
        raise ValueError("the temporary clientId must differ from the issuer")
    if seed is None:
        seed = slug_id() + slug_id()
    if len(seed) != SEED_LENGTH:
        raise ValueError(f"seed must be {SEED_LENGTH} characters")

    # Member order matches the Python client, so certificates compare equal.
    cert = {"version": 1, "scopes": list(scopes), "start": start_ms, "expiry": expiry_ms, "seed": seed}
    if name:
        cert["issuer"] = issuer_id
    cert["signature"] = certificate_signature(cert, name or issuer_id, issuer_token)
    return {
        "clientId": name or issuer_id,
        "accessToken": temporary_access_token(issuer_token, seed),
        "certificate": json.dumps(cert, separators=(",", ":")),
    }
