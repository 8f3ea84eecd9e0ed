"""Settings from the environment.

Every TASKJOURNAL_* setting is declared once in SETTINGS (name, kind, default,
meaning); `Settings.from_env` parses and checks each against its declaration,
and the README's settings table is generated from the same list. A bad value
raises SettingError, whose message is one line naming the setting and the cause."""

import json
import math
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

DEFAULT_ANONYMOUS_SCOPES = (
    "queue:get-artifact:public/* queue:get-provisioner:* queue:get-task:* queue:get-worker-type:* "
    "queue:get-worker:* queue:list-artifacts:* queue:list-dependent-tasks:* queue:list-provisioners "
    "queue:list-task-group:* queue:list-worker-types:* queue:list-workers:* queue:pending-count:* "
    "queue:status:* auth:current-scopes auth:expand-scopes"
)
PREFIX = "TASKJOURNAL_"
DEV_HOST = "127.0.0.1"  # `taskjournal dev` holds a root client with scope *: loopback unless told otherwise


class SettingError(ValueError):
    """A setting that cannot work; str() is one line naming the setting and the cause."""

    def __init__(self, name: str, cause: str):
        super().__init__(f"{name}: {cause}")
        self.setting = name


# ------------------------------------------------------------------ kinds of value
class Kind:
    """How one setting's text becomes a value; `describe` is the README's range column."""

    def parse(self, name: str, text: str):
        return text

    def describe(self) -> str:
        return "any text"


@dataclass(frozen=True)
class Integer(Kind):
    low: int
    high: int

    def parse(self, name: str, text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise SettingError(name, f"{text!r} is not a whole number ({self.describe()})") from None
        if not self.low <= value <= self.high:
            raise SettingError(name, f"{value} is out of range ({self.describe()})")
        return value

    def describe(self) -> str:
        return f"{self.low} to {self.high}"


@dataclass(frozen=True)
class Seconds(Kind):
    low: float
    high: float

    def parse(self, name: str, text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise SettingError(name, f"{text!r} is not a number of seconds ({self.describe()})") from None
        if not math.isfinite(value) or not self.low <= value <= self.high:
            raise SettingError(name, f"{text.strip()} is out of range ({self.describe()})")
        return value

    def describe(self) -> str:
        return f"{self.low:g} to {self.high:g} seconds"


@dataclass(frozen=True)
class Choice(Kind):
    choices: tuple[str, ...]

    def parse(self, name: str, text: str) -> str:
        if text not in self.choices:
            raise SettingError(name, f"{text!r} is not one of {', '.join(self.choices)}")
        return text

    def describe(self) -> str:
        return " or ".join(f"`{c}`" for c in self.choices)


@dataclass(frozen=True)
class Url(Kind):
    schemes: tuple[str, ...]
    host_required: bool = True  # libpq URLs may leave the host out (the local socket)

    def parse(self, name: str, text: str) -> str:
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as err:
            raise SettingError(name, f"not a valid URL ({err})") from None
        if parts.scheme not in self.schemes:
            wanted = " or ".join(f"{s}://" for s in self.schemes)
            raise SettingError(name, f"must start with {wanted}, not {without_password(text)!r}")
        if self.host_required and not parts.hostname:
            raise SettingError(name, f"names no host: {without_password(text)!r}")
        return text

    def describe(self) -> str:
        return " or ".join(f"`{s}://…`" for s in self.schemes)


class Text(Kind):
    pass


class Secret(Kind):
    def describe(self) -> str:
        return "any text (secret)"


class FilePath(Kind):
    def parse(self, name: str, text: str) -> Path:
        return Path(text)

    def describe(self) -> str:
        return "a path"


class Scopes(Kind):
    def parse(self, name: str, text: str) -> tuple[str, ...]:
        from taskjournal.shared.auth.scopes import is_valid_scope

        scopes = tuple(text.split())
        bad = [s for s in scopes if not is_valid_scope(s)]
        if bad:
            raise SettingError(name, f"{bad[0]!r} is not a valid scope")
        return scopes

    def describe(self) -> str:
        return "space-separated scopes; set but empty: none"


# ------------------------------------------------------------------ the declared list
@dataclass(frozen=True)
class Spec:
    name: str  # without the TASKJOURNAL_ prefix
    attr: str  # the Settings field
    kind: Kind
    default: object
    meaning: str
    shown_default: str = ""  # the README's default column, when the value alone does not say it

    @property
    def env_name(self) -> str:
        return PREFIX + self.name


SETTINGS: tuple[Spec, ...] = (
    Spec("PORT", "port", Integer(1, 65535), 8080, "HTTP port of the API (and of every service's ops routes)"),
    Spec("HOST", "host", Text(), "0.0.0.0", "address to listen on",
         shown_default=f"`0.0.0.0`; `{DEV_HOST}` for `taskjournal dev`"),
    Spec("ROOT_URL", "root_url", Url(("http", "https")), "",
         "public root URL clients use (in signed URLs and schema ids)", shown_default="`http://localhost:<PORT>`"),
    Spec("DATABASE_URL", "database_url", Url(("postgresql", "postgres"), host_required=False), None,
         "PostgreSQL database; unset: SQLite in the data directory", shown_default="unset"),
    Spec("AMQP_URL", "amqp_url", Url(("amqp", "amqps")), None,
         "RabbitMQ broker for Pulse messages and internal events; unset: in-process bus", shown_default="unset"),
    Spec("DATA_DIR", "data_dir", FilePath(), Path(".taskjournal"),
         "SQLite file and generated root credentials (created private: 0700)"),
    Spec("ROOT_CLIENT_ID", "root_client_id", Text(), None,
         "clientId of the root client (scope `*`); set with ROOT_ACCESS_TOKEN, required by the api-gateway "
         "except in `taskjournal dev`, which generates one", shown_default="unset"),
    Spec("ROOT_ACCESS_TOKEN", "root_access_token", Secret(), None,
         "accessToken of the root client; also keys the credentials claimWork hands out", shown_default="unset"),
    Spec("CLIENTS_FILE", "clients_file", FilePath(), None,
         "JSON file of more clients and roles (`shared/schemas/clients-file.json`, "
         "e.g. `deploy/clients.example.json`)", shown_default="unset"),
    Spec("ANONYMOUS_SCOPES", "anonymous_scopes", Scopes(), tuple(DEFAULT_ANONYMOUS_SCOPES.split()),
         "scopes of requests without credentials", shown_default="upstream's read-only public set"),
    Spec("CLAIM_TIMEOUT", "claim_timeout", Seconds(1, 86400), 1200.0, "how long a claim lasts before reclaimTask"),
    Spec("CLAIMWORK_WAIT", "claimwork_wait", Seconds(0, 300), 20.0,
         "how long claimWork waits for a task before answering with none"),
    Spec("RESOLVER_INTERVAL", "resolver_interval", Seconds(0.05, 3600), 1.0,
         "how often deadlines and expired claims are looked for"),
    Spec("EXECUTOR_THREADS", "executor_threads", Integer(1, 1024), 16,
         "threads (and database connections) per process for store calls"),
    Spec("GATEWAY_PROCESSES", "gateway_processes", Integer(0, 256), 0,
         "api-gateway processes `taskjournal dev` runs on its port (SO_REUSEPORT), next to one process for "
         "the relay and resolvers; with PostgreSQL only (SQLite: one process); 0: one per CPU core but one",
         shown_default="`0`: cores − 1 (at least 1)"),
    Spec("SCHEMA", "schema", Choice(("auto", "require")), "auto",
         "`auto`: create and upgrade the database schema at start; `require`: no DDL, refuse to start (exit 2) "
         "unless `taskjournal migrate` brought the schema to this build's version (docs/operations.md)"),
    Spec("LOG_FORMAT", "log_format", Choice(("json", "text")), "json", "log lines on stderr"),
    Spec("LOG_LEVEL", "log_level", Choice(("debug", "info", "warning", "error")), "info",
         "least severe log lines written (`info` has one access line per request)"),
    Spec("INSTANCE", "instance_name", Text(), None,
         "names this deployment's internal routing keys and service queues on the broker",
         shown_default="the database name"),
    Spec("COMMIT", "commit", Text(), "",
         "git commit of the build, reported by `--version` and `/__version__` (set by the container image)",
         shown_default="`git rev-parse HEAD` of a checkout, else `unknown`"),
    # ---- the artifact-service: where artifact and object bytes live (shared/storage/)
    Spec("ARTIFACT_STORE", "artifact_store", Choice(("file", "s3")), "file",
         "where artifact and object bytes are kept: `file` under DATA_DIR/blobs, or an S3-compatible API"),
    Spec("ARTIFACT_URL", "artifact_url", Url(("http", "https")), None,
         "where clients reach the artifact-service's data URLs (signed PUT/GET of bytes)",
         shown_default="the root URL"),
    Spec("ARTIFACT_SERVICE_URL", "artifact_service_url", Url(("http", "https")), None,
         "where an api-gateway without the artifact-service in its process forwards `/api/object/v1/` calls "
         "(the artifact-service's internal URL; set by `taskjournal stack`)",
         shown_default="unset: not forwarded (an ingress routes them)"),
    Spec("S3_ENDPOINT_URL", "s3_endpoint_url", Url(("http", "https")), None,
         "S3-compatible API endpoint (with ARTIFACT_STORE=s3); credentials from AWS_ACCESS_KEY_ID and "
         "AWS_SECRET_ACCESS_KEY", shown_default="unset: AWS"),
    Spec("S3_REGION", "s3_region", Text(), "us-east-1", "S3 region the URLs are signed for"),
    Spec("S3_PUBLIC_BUCKET", "s3_public_bucket", Text(), None,
         "bucket for artifacts named public/... (with ARTIFACT_STORE=s3)", shown_default="unset"),
    Spec("S3_PRIVATE_BUCKET", "s3_private_bucket", Text(), None,
         "bucket for every other artifact and for objects (with ARTIFACT_STORE=s3)", shown_default="unset"),
)
_DEFAULTS: dict[str, Any] = {spec.attr: spec.default for spec in SETTINGS}


@dataclass(frozen=True)
class Settings:
    port: int = _DEFAULTS["port"]
    host: str = _DEFAULTS["host"]
    root_url: str = _DEFAULTS["root_url"]
    database_url: str | None = _DEFAULTS["database_url"]
    amqp_url: str | None = _DEFAULTS["amqp_url"]
    data_dir: Path = _DEFAULTS["data_dir"]
    root_client_id: str | None = _DEFAULTS["root_client_id"]
    root_access_token: str | None = field(default=_DEFAULTS["root_access_token"], repr=False)
    clients_file: Path | None = _DEFAULTS["clients_file"]
    anonymous_scopes: tuple[str, ...] = _DEFAULTS["anonymous_scopes"]
    claim_timeout: float = _DEFAULTS["claim_timeout"]
    claimwork_wait: float = _DEFAULTS["claimwork_wait"]
    resolver_interval: float = _DEFAULTS["resolver_interval"]
    executor_threads: int = _DEFAULTS["executor_threads"]
    gateway_processes: int = _DEFAULTS["gateway_processes"]
    schema: str = _DEFAULTS["schema"]
    log_format: str = _DEFAULTS["log_format"]
    log_level: str = _DEFAULTS["log_level"]
    instance_name: str | None = _DEFAULTS["instance_name"]
    commit: str = _DEFAULTS["commit"]
    artifact_store: str = _DEFAULTS["artifact_store"]
    artifact_url: str | None = _DEFAULTS["artifact_url"]
    artifact_service_url: str | None = _DEFAULTS["artifact_service_url"]
    s3_endpoint_url: str | None = _DEFAULTS["s3_endpoint_url"]
    s3_region: str = _DEFAULTS["s3_region"]
    s3_public_bucket: str | None = _DEFAULTS["s3_public_bucket"]
    s3_private_bucket: str | None = _DEFAULTS["s3_private_bucket"]

    @property
    def public_root_url(self) -> str:
        return (self.root_url or f"http://localhost:{self.port}").rstrip("/")

    @property
    def public_artifact_url(self) -> str:
        """Where clients reach the artifact-service's data URLs."""
        return (self.artifact_url or self.public_root_url).rstrip("/")

    @property
    def instance(self) -> str:
        """Names this deployment's internal routing keys and service queues on
        the broker (TASKJOURNAL_INSTANCE, else the database name)."""
        name = self.instance_name or (urlsplit(self.database_url).path.lstrip("/") if self.database_url else "dev")
        return re.sub(r"[^A-Za-z0-9_-]", "_", name or "default")

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, *, dev: bool = False) -> "Settings":
        """Settings from TASKJOURNAL_* variables (empty means unset, except
        ANONYMOUS_SCOPES where empty means none); SettingError on a bad value.
        `dev`: the defaults of `taskjournal dev` (listen on loopback only)."""
        values = {}
        for spec in SETTINGS:
            text = env.get(spec.env_name)
            if text is None or (text == "" and not isinstance(spec.kind, Scopes)):
                continue
            values[spec.attr] = spec.kind.parse(spec.env_name, text)
        if dev:
            values.setdefault("host", DEV_HOST)
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Checks that span settings or read files; SettingError on the first problem."""
        if bool(self.root_client_id) != bool(self.root_access_token):
            given, missing = (("ROOT_CLIENT_ID", "ROOT_ACCESS_TOKEN") if self.root_client_id
                              else ("ROOT_ACCESS_TOKEN", "ROOT_CLIENT_ID"))
            raise SettingError(PREFIX + missing, f"must be set together with {PREFIX}{given}")
        if self.clients_file is not None:
            check_clients_file(self.clients_file)
        if self.artifact_store == "s3":
            for name, value in (("S3_PUBLIC_BUCKET", self.s3_public_bucket), ("S3_PRIVATE_BUCKET", self.s3_private_bucket)):
                if not value:
                    raise SettingError(PREFIX + name, "must be set with TASKJOURNAL_ARTIFACT_STORE=s3")


def check_clients_file(path: Path) -> None:
    """A clients file that exists, is JSON, matches shared/schemas/clients-file.json
    and holds valid scopes and expiry dates; SettingError otherwise."""
    from taskjournal.shared.auth.clients import load_config_file
    from taskjournal.shared.schemas import SchemaError, validate

    name = PREFIX + "CLIENTS_FILE"
    try:
        text = Path(path).read_bytes()
    except OSError as err:
        raise SettingError(name, f"cannot read {str(path)!r}: {err.strerror or err}") from None
    try:
        config = json.loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        raise SettingError(name, f"{str(path)!r} is not JSON: {err}") from None
    try:
        validate("clients-file", config)
    except SchemaError as err:
        raise SettingError(name, f"{str(path)!r} does not match the clients file schema: {err.message}") from None
    try:
        load_config_file(path)
    except (ValueError, KeyError, TypeError) as err:
        raise SettingError(name, f"{str(path)!r}: {err}") from None


def roles_need(settings: Settings, roles) -> None:
    """Settings a set of roles cannot run without; SettingError otherwise.
    The api-gateway signs the temporary credentials claimWork hands out with a
    key derived from the root secret, so it needs the root client."""
    if "api-gateway" in roles and not settings.root_access_token:
        raise SettingError(PREFIX + "ROOT_ACCESS_TOKEN",
                           "the api-gateway needs a root client (set TASKJOURNAL_ROOT_CLIENT_ID and "
                           "TASKJOURNAL_ROOT_ACCESS_TOKEN) to sign the credentials claimWork hands out")
    if "artifact-service" in roles and not settings.root_access_token:
        raise SettingError(PREFIX + "ROOT_ACCESS_TOKEN",
                           "the artifact-service needs a root client (set TASKJOURNAL_ROOT_CLIENT_ID and "
                           "TASKJOURNAL_ROOT_ACCESS_TOKEN): its signed data URLs are keyed by the root secret")


def settings_table() -> str:
    """The README's table of settings, generated from SETTINGS."""
    rows = ["| setting | default | values | meaning |", "|---|---|---|---|"]
    for spec in SETTINGS:
        shown = f"{spec.default:g}" if isinstance(spec.default, float) else spec.default
        default = spec.shown_default or f"`{shown}`"
        rows.append(f"| `{spec.env_name}` | {default} | {spec.kind.describe()} | {spec.meaning} |")
    return "\n".join(rows) + "\n"


def private_dir(path: Path) -> Path:
    """Create the data directory readable by its owner only (0700); an existing
    one is left as it is (it may be shared, like /tmp)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=0o700, exist_ok=True)
    except FileExistsError as err:  # exist_ok only forgives directories
        raise SettingError(PREFIX + "DATA_DIR", f"cannot create {str(path)!r}: {err.filename} is not a directory") from None
    except OSError as err:
        raise SettingError(PREFIX + "DATA_DIR", f"cannot create {str(path)!r}: {err.strerror or err}") from None
    return path


def private_file(path: Path) -> Path:
    """Make sure a file of the data directory exists readable by its owner only
    (0600) before anyone opens it; an existing one is made so."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)
    except OSError as err:
        raise SettingError(PREFIX + "DATA_DIR", f"cannot create {str(path)!r}: {err.strerror or err}") from None
    return Path(path)


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


assert {spec.attr for spec in SETTINGS} == {f.name for f in fields(Settings)}, "every field is declared once"
