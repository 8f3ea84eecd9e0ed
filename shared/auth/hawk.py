"""Hawk authentication of API requests: headers, bewits, certificates,
authorizedScopes (spec §3, §4.5, §5, §6)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, NoReturn

import orjson

from ._cache import LRUCache
from ._js import is_number, is_truthy, parse_int, utf16_len
from .clients import Client, ClientStore
from .credentials import MAX_CERTIFICATE_SPAN_MS, SEED_LENGTH, certificate_signature, temporary_access_token
from .scopes import Roles, ScopeSet, is_valid_scope

ANONYMOUS_SCOPE = "assume:anonymous"
MAX_LENGTH = 4096
TIMESTAMP_SKEW_MS = 15 * 60 * 1000
CERTIFICATE_SKEW_MS = 5 * 60 * 1000
NO_AUTH_LIFETIME_MS = 15 * 60 * 1000

TWO_SCHEMES_MESSAGE = (
    "Cannot use two authentication schemes at once "
    "this request has both bewit in querystring and 'authorization' header"
)

# The grammar comes from JavaScript regexes: \w is ASCII, \s is Unicode
# whitespace and "." stops at line terminators.
_JS_SPACE = r"[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
_JS_DOT = r"[^\n\r\u2028\u2029]"
_SCHEME = re.compile(rf"([A-Za-z0-9_]+)(?:{_JS_SPACE}+({_JS_DOT}*))?\Z")
_ATTRIBUTE = re.compile(rf'([A-Za-z0-9_]+)="([^"\\]*)"{_JS_SPACE}*(?:,{_JS_SPACE}*|\Z)')
_ATTRIBUTE_VALUE = re.compile(r"[ A-Za-z0-9_!#$%&'()*+,\-./:;<=>?@\[\]^`{|}~]+\Z")
_ATTRIBUTE_NAMES = frozenset(["id", "ts", "nonce", "hash", "ext", "mac", "app", "dlg"])
_REQUIRED_ATTRIBUTES = ("id", "ts", "nonce", "mac")
_TIMESTAMP = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_HAS_BEWIT = re.compile(rf"/{_JS_DOT}*[?&]bewit=")
_BEWIT = re.compile(rf"(/{_JS_DOT}*)([?&])bewit=([^&]*)(?:&({_JS_DOT}+))?\Z")
_BEWIT_CHARS = re.compile(r"[A-Za-z0-9_-]*\Z")
_HOST = re.compile(r"(?:(?:\r\n)?\s)*([^:]+|\[[^\]]+\])(?::([0-9]+))?(?:(?:\r\n)?\s)*\Z")
_BASE64_NOISE = re.compile(r"[^A-Za-z0-9+/_-]")


class AuthenticationFailure(Exception):
    """Authentication failed; the message is the upstream failure text."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _fail(message: str) -> NoReturn:
    raise AuthenticationFailure(message)


# ------------------------------------------------------------ request model


@dataclass
class AuthRequest:
    method: str
    resource: str  # raw path + '?query' exactly as received
    host: str
    port: int
    authorization: str | None = None
    content_type: str | None = None
    body: bytes = b""


@dataclass
class AuthResult:
    status: str  # "auth-success" | "no-auth" | "auth-failed"
    client_id: str | None
    scopes: ScopeSet
    message: str | None
    expires_ms: int | None
    issuer: str | None = None  # who issued temporary credentials (the client itself otherwise)


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """Case-insensitive lookup; ``name`` is lower-case."""
    if not headers:
        return None
    value = headers.get(name)
    if value is None:
        for key, candidate in headers.items():
            if key.lower() == name:
                return candidate
    return value


def host_and_port(host_header: str | None, is_tls: bool, headers: Mapping[str, str]) -> tuple[str, int]:
    """Host and port a client signed, as upstream derives them (§3.2)."""
    host, port = "", 443 if is_tls else 80
    if host_header and len(host_header) <= MAX_LENGTH:
        match = _HOST.match(host_header)
        if match:
            host = match.group(1)
            if match.group(2):
                port = int(match.group(2))
    forwarded_port = _header(headers, "x-forwarded-port")
    if forwarded_port is not None:
        parsed = parse_int(forwarded_port)
        if parsed is not None:
            port = parsed
    elif _header(headers, "x-forwarded-proto") == "https":
        port = 443
    return host, port


# ------------------------------------------------------------------- hawk core


def parse_authorization_header(header: str) -> dict[str, str]:
    """Attributes of a Hawk Authorization header (§3.1)."""
    if len(header) > MAX_LENGTH:
        _fail("Bad Request: Header length too long")
    match = _SCHEME.match(header)
    if not match:
        _fail("Bad Request: Invalid header syntax")
    if match.group(1).lower() != "hawk":
        _fail("Unauthorized: Unauthorized")
    rest = match.group(2)
    if not rest:
        _fail("Bad Request: Invalid header syntax")

    attributes: dict[str, str] = {}
    error = ""
    clean = True
    position = 0
    # Like upstream, keep scanning after an error; the last one is reported.
    for item in _ATTRIBUTE.finditer(rest):
        clean = clean and item.start() == position
        position = item.end()
        name, value = item.groups()
        if name not in _ATTRIBUTE_NAMES:
            error = f"Unknown attribute: {name}"
        elif not _ATTRIBUTE_VALUE.match(value):
            error = f"Bad attribute value: {name}"
        elif name in attributes:
            error = f"Duplicate attribute: {name}"
        else:
            attributes[name] = value
            continue
        clean = False
    if not clean or position != len(rest):
        _fail("Bad Request: " + (error or "Bad header format"))
    return attributes


def payload_hash(body: bytes, content_type: str | None) -> str:
    """Hawk payload hash of the raw body bytes (§3.4)."""
    media_type = content_type.split(";")[0].strip().lower() if content_type else ""
    digest = hashlib.sha256(b"hawk.1.payload\n")
    digest.update(media_type.encode())
    digest.update(b"\n")
    digest.update(body)
    digest.update(b"\n")
    return base64.b64encode(digest.digest()).decode()


def _escape_ext(ext: str) -> str:
    return ext.replace("\\", "\\\\").replace("\n", "\\n")


def calculate_mac(key: str, kind: str, ts: str, nonce: str, method: str, resource: str,
                  host: str, port: int, hash_: str = "", ext: str = "",
                  app: str | None = None, dlg: str | None = None) -> str:
    """base64 HMAC-SHA256 of the Hawk normalized string (§3.3)."""
    normalized = (
        f"hawk.1.{kind}\n{ts}\n{nonce}\n{method}\n{resource}\n"
        f"{host.lower()}\n{port}\n{hash_}\n{_escape_ext(ext)}\n"
    )
    if app:
        normalized += f"{app}\n{dlg or ''}\n"
    digest = hmac.new(key.encode(), normalized.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _stale(ts: str, now_ms: float) -> bool:
    # Upstream lets a non-numeric ts (NaN) through; treat it as stale instead.
    text = ts.strip(" ")
    if not _TIMESTAMP.match(text):
        return True
    seconds = float(text)
    return not math.isfinite(seconds) or abs(seconds * 1000 - now_ms) > TIMESTAMP_SKEW_MS


def _decode_base64(text: str) -> bytes:
    """Decode like Node's Buffer.from(text, 'base64'): either alphabet,
    padding optional, stop at '=', skip other characters."""
    text = _BASE64_NOISE.sub("", text.split("=", 1)[0])
    text = text.replace("-", "+").replace("_", "/")
    if len(text) % 4 == 1:
        text = text[:-1]  # a lone trailing character carries no full byte
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _parse_ext(text: str):
    try:
        value = orjson.loads(_decode_base64(text).decode("utf-8", "replace"))
    except (binascii.Error, orjson.JSONDecodeError, ValueError):
        _fail("Failed to parse ext")
    # Members of a non-object ext read as undefined upstream.
    return value if isinstance(value, dict) else {}


# --------------------------------------------------------------- certificates


def _certificate_shape_error(cert) -> str | None:
    """Checks 1-5 of §4.5."""
    if not isinstance(cert, (dict, list)):  # a JS array is an Object too
        return "ext.certificate must be a JSON object"
    get: Callable[[str], Any] = cert.get if isinstance(cert, dict) else (lambda _name: None)
    version = get("version")
    if not (is_number(version) and version == 1):
        return "ext.certificate.version must be 1"
    if not isinstance(get("seed"), str):
        return "ext.certificate.seed must be a string"
    if utf16_len(get("seed")) != SEED_LENGTH:
        return "ext.certificate.seed must be 44 characters"
    if not is_number(get("start")):
        return "ext.certificate.start must be a number"
    if not is_number(get("expiry")):
        return "ext.certificate.expiry must be a number"
    if not isinstance(get("scopes"), list):
        return "ext.certificate.scopes must be an array"
    if not all(is_valid_scope(s) for s in get("scopes")):
        return "ext.certificate.scopes must be an array of valid scopes"
    return None


def _certificate_error(cert: dict, name: str, issuer: Client, issuer_scopes: ScopeSet) -> str | None:
    """Checks 8-11 of §4.5 (the time-independent ones after the window)."""
    if cert["expiry"] - cert["start"] > MAX_CERTIFICATE_SPAN_MS:
        return "ext.certificate cannot last longer than 31 days!"
    issuer_id = issuer.client_id
    if issuer_id != name:
        create_scope = "auth:create-client:" + name
        if not issuer_scopes.has(create_scope):
            return (f"ext.certificate issuer `{issuer_id}` doesn't have "
                    f"`{create_scope}` for supplied clientId.")
    elif "clientId" in cert:
        return "ext.certificate.clientId must only be used with ext.certificate.issuer"
    if not all(issuer_scopes.has(s) for s in cert["scopes"]):
        return (f"ext.certificate issuer `{issuer_id}` doesn't satisfy all certificate scopes "
                f"{', '.join(cert['scopes'])}.  The temporary credentials were not generated correctly.")
    signature = cert.get("signature")
    expected = certificate_signature(cert, name, issuer.access_token)
    if isinstance(signature, str) and len(signature.encode()) != len(expected):
        return "Input buffers must have the same byte length"  # Node's timingSafeEqual
    if not isinstance(signature, str) or not _equal(signature, expected):
        if issuer_id != name:
            return "ext.certificate.signature is not valid, or wrong clientId provided"
        return "ext.certificate.signature is not valid"
    return None


@dataclass(frozen=True)
class _Grant:
    """What a (Hawk id, issuer, ext) triple resolves to; time checks excluded."""

    issuer: Client
    error_before_window: str | None = None
    window: tuple[float, float] | None = None  # certificate (start, expiry) ms
    error_after_window: str | None = None
    key: str = ""
    scopes: ScopeSet = field(default_factory=lambda: ScopeSet(()))  # none until granted
    expires_ms: int | None = None


def _authorized_scopes_error(authorized, available: ScopeSet) -> str | None:
    if not isinstance(authorized, list):
        return "ext.authorizedScopes must be an array"
    if not all(is_valid_scope(s) for s in authorized):
        return "ext.authorizedScopes must be an array of valid scopes"
    if all(available.has(s) for s in authorized):
        return None
    return "\n".join([
        "Supplied credentials do not satisfy authorizedScopes; credentials have scopes:",
        "", "```", "\n".join(available), "```", "",
        "authorizedScopes are:", "", "```", "\n".join(authorized), "```",
    ])


# -------------------------------------------------------------- authenticator


_EMPTY = ScopeSet()
_INVALID_EXT = object()


class Authenticator:
    """Authenticates requests against a client store and roles (§3.8).

    Everything derived from credentials (expanded scopes, certificate
    validation) is cached; the request MAC, timestamp and certificate
    validity window are checked on every call.
    """

    def __init__(self, clients: ClientStore, roles: Roles, clock=time.time, cache_size: int = 4096):
        self._clients = clients
        self._roles = roles
        self._clock = clock
        self._ext_cache = LRUCache(cache_size)
        self._grant_cache = LRUCache(cache_size)
        self._issuer_cache = LRUCache(cache_size)
        self._scope_set_cache = LRUCache(cache_size)

    def authenticate(self, req: AuthRequest) -> AuthResult:
        try:
            return self._authenticate(req)
        except AuthenticationFailure as failure:
            return AuthResult("auth-failed", None, _EMPTY, failure.message, None)

    @property
    def anonymous_scopes(self) -> ScopeSet:
        return self._final_scopes(())

    def _authenticate(self, req: AuthRequest) -> AuthResult:
        now_ms = self._clock() * 1000
        has_bewit = _HAS_BEWIT.match(req.resource) is not None
        if req.authorization:
            if has_bewit:
                _fail(TWO_SCHEMES_MESSAGE)
            return self._authenticate_header(req, now_ms)
        if has_bewit:
            return self._authenticate_bewit(req, now_ms)
        return AuthResult("no-auth", None, self.anonymous_scopes, None, int(now_ms) + NO_AUTH_LIFETIME_MS)

    def _authenticate_header(self, req: AuthRequest, now_ms: float) -> AuthResult:
        attrs = parse_authorization_header(req.authorization or "")
        if not all(name in attrs for name in _REQUIRED_ATTRIBUTES):
            _fail("Bad Request: Missing attributes")
        client_id = attrs["id"]
        grant = self._credentials(client_id, attrs.get("ext"), now_ms)
        mac = calculate_mac(grant.key, "header", attrs["ts"], attrs["nonce"], req.method.upper(),
                            req.resource, req.host, req.port, attrs.get("hash", ""),
                            attrs.get("ext", ""), attrs.get("app"), attrs.get("dlg"))
        if not _equal(mac, attrs["mac"]):
            _fail("Unauthorized: Bad mac")
        if _stale(attrs["ts"], now_ms):
            _fail("Unauthorized: Stale timestamp")
        if "hash" in attrs:
            computed = payload_hash(req.body, req.content_type)
            if not _equal(attrs["hash"], computed):
                _fail(f"Invalid payload hash: {attrs['hash']}\n"
                      f"Computed payload hash: {computed}\n"
                      "This happens when your request carries a signed hash of the payload "
                      "and the hash doesn't match the hash we've computed on the server-side.")
        return AuthResult("auth-success", client_id, grant.scopes, None, grant.expires_ms, grant.issuer.client_id)

    def _authenticate_bewit(self, req: AuthRequest, now_ms: float) -> AuthResult:
        if len(req.resource) > MAX_LENGTH:
            _fail("Bad Request: Resource path exceeds max length")
        match = _BEWIT.match(req.resource)
        if not match:
            _fail("Unauthorized: Unauthorized")
        path, separator, bewit, rest = match.groups()
        if not bewit:
            _fail("Unauthorized: Empty bewit")
        if req.method.upper() not in ("GET", "HEAD"):
            _fail("Unauthorized: Invalid method")
        if not _BEWIT_CHARS.match(bewit):
            _fail("Bad Request: Invalid bewit encoding")
        try:
            decoded = _decode_base64(bewit).decode("latin-1")  # Node's 'binary'
        except binascii.Error:
            _fail("Bad Request: Invalid bewit encoding")
        parts = decoded.split("\\")
        if len(parts) != 4:
            _fail("Bad Request: Invalid bewit structure")
        client_id, exp_text, bewit_mac, ext = parts
        exp = parse_int(exp_text)
        if not client_id or not exp or not bewit_mac:
            _fail("Bad Request: Missing bewit attributes")
        if exp * 1000 <= now_ms:
            _fail("Unauthorized: Access expired")
        grant = self._credentials(client_id, ext or None, now_ms)
        resource = path + (separator + rest if rest else "")
        mac = calculate_mac(grant.key, "bewit", str(exp), "", "GET", resource, req.host, req.port, "", ext)
        if not _equal(mac, bewit_mac):
            _fail("Unauthorized: Bad mac")
        return AuthResult("auth-success", client_id, grant.scopes, None, grant.expires_ms, grant.issuer.client_id)

    # -- credentials ------------------------------------------------------

    def _credentials(self, name: str, ext_text: str | None, now_ms: float) -> _Grant:
        """Key, scopes and expiry for Hawk id ``name`` with this ext (§3.8)."""
        ext = self._ext(ext_text) if ext_text else None
        issuer_id = name
        cert: Any = ext.get("certificate") if ext else None
        if isinstance(cert, dict) and is_truthy(cert.get("issuer")):
            issuer_id = cert["issuer"]
            if not isinstance(issuer_id, str):
                _fail("ext.certificate.issuer must be a string")
            if issuer_id == name:
                _fail("ext.certificate.issuer must differ from the supplied clientId")
        issuer = self._load_client(issuer_id, now_ms)

        key = (name, issuer_id, ext_text)
        grant = self._grant_cache.get(key)
        if grant is None or grant.issuer is not issuer:
            grant = self._grant(name, issuer, ext)
            self._grant_cache.put(key, grant)

        if grant.error_before_window:
            _fail(grant.error_before_window)
        if grant.window:
            start, expiry = grant.window
            if start > now_ms + CERTIFICATE_SKEW_MS:
                _fail("ext.certificate.start > now")
            if expiry < now_ms - CERTIFICATE_SKEW_MS:
                _fail("ext.certificate.expiry < now")
        if grant.error_after_window:
            _fail(grant.error_after_window)
        return grant

    def _ext(self, text: str) -> dict:
        ext = self._ext_cache.get(text)
        if ext is None:
            try:
                ext = _parse_ext(text)
            except AuthenticationFailure:
                ext = _INVALID_EXT
            self._ext_cache.put(text, ext)
        if ext is _INVALID_EXT:
            _fail("Failed to parse ext")
        return ext

    def _load_client(self, client_id: str, now_ms: float) -> Client:
        client = self._clients.get(client_id)
        if client is None:
            _fail(f"Client with clientId '{client_id}' not found")
        if client.disabled:
            _fail(f"Client with clientId '{client_id}' is disabled")
        if client.expired(now_ms):
            _fail(f"Client with clientId: '{client_id}' has expired")
        return client

    def _grant(self, name: str, issuer: Client, ext: dict | None) -> _Grant:
        issuer_scopes = self._issuer_scopes(issuer)
        scopes: Iterable[str] = issuer_scopes
        key, expires, window = issuer.access_token, issuer.expires_ms, None
        ext = ext or {}

        cert: Any = ext.get("certificate")
        if is_truthy(cert):
            problem = _certificate_shape_error(cert)
            if problem:
                return _Grant(issuer, error_before_window=problem)
            window = (cert["start"], cert["expiry"])
            problem = _certificate_error(cert, name, issuer, issuer_scopes)
            if problem:
                return _Grant(issuer, window=window, error_after_window=problem)
            key = temporary_access_token(issuer.access_token, cert["seed"])
            scopes = cert["scopes"]
            expiry = int(cert["expiry"])
            expires = expiry if expires is None else min(expires, expiry)

        authorized: Any = ext.get("authorizedScopes")
        if is_truthy(authorized):
            # Anonymous scopes count as held here, so authorizedScopes may name them.
            problem = _authorized_scopes_error(authorized, self._final_scopes(scopes))
            if problem:
                return _Grant(issuer, window=window, error_after_window=problem)
            scopes = authorized

        return _Grant(issuer, window=window, key=key, scopes=self._final_scopes(scopes), expires_ms=expires)

    def _issuer_scopes(self, issuer: Client) -> ScopeSet:
        """The issuer's role-expanded scopes, without the anonymous role."""
        cached = self._issuer_cache.get(issuer.client_id)
        if cached is None or cached[0] is not issuer:
            cached = (issuer, ScopeSet(self._roles.expand(issuer.scopes)))
            self._issuer_cache.put(issuer.client_id, cached)
        return cached[1]

    def _final_scopes(self, scopes: Iterable[str]) -> ScopeSet:
        """normalize(expand(scopes ∪ {assume:anonymous}))."""
        key = frozenset(scopes).union((ANONYMOUS_SCOPE,))
        cached = self._scope_set_cache.get(key)
        if cached is None:
            cached = ScopeSet(self._roles.expand(key))
            self._scope_set_cache.put(key, cached)
        return cached
