"""Settings from the environment; names and defaults as the design brief fixes them."""

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEFAULT_ANONYMOUS_SCOPES = (
    "queue:get-artifact:public/* queue:get-provisioner:* queue:get-task:* queue:get-worker-type:* "
    "queue:get-worker:* queue:list-artifacts:* queue:list-dependent-tasks:* queue:list-provisioners "
    "queue:list-task-group:* queue:list-worker-types:* queue:list-workers:* queue:pending-count:* "
    "queue:status:* auth:current-scopes auth:expand-scopes"
)


@dataclass(frozen=True)
class Settings:
    port: int = 8080
    host: str = "0.0.0.0"
    root_url: str = ""
    database_url: str | None = None
    amqp_url: str | None = None
    data_dir: Path = Path(".taskjournal")
    root_client_id: str | None = None
    root_access_token: str | None = None
    clients_file: Path | None = None
    anonymous_scopes: tuple[str, ...] = tuple(DEFAULT_ANONYMOUS_SCOPES.split())
    claim_timeout: float = 1200.0
    claimwork_wait: float = 20.0
    resolver_interval: float = 1.0
    executor_threads: int = 16
    log_format: str = "json"
    instance_name: str | None = None

    @property
    def public_root_url(self) -> str:
        return (self.root_url or f"http://localhost:{self.port}").rstrip("/")

    @property
    def instance(self) -> str:
        """Names this deployment's internal routing keys and service queues on
        the broker (TASKJOURNAL_INSTANCE, else the database name)."""
        name = self.instance_name or (urlsplit(self.database_url).path.lstrip("/") if self.database_url else "dev")
        return re.sub(r"[^A-Za-z0-9_-]", "_", name or "default")

    @property
    def store_description(self) -> str:
        if self.database_url:
            return "postgresql " + without_password(self.database_url)
        return f"sqlite {self.data_dir / 'taskjournal.sqlite'}"

    @classmethod
    def from_env(cls, env=os.environ) -> "Settings":
        def get(name, default=None):
            value = env.get("TASKJOURNAL_" + name, "")
            return value if value != "" else default

        anonymous = env.get("TASKJOURNAL_ANONYMOUS_SCOPES")  # set but empty: no anonymous scopes
        clients_file = get("CLIENTS_FILE")
        return cls(
            port=int(get("PORT", 8080)),
            host=get("HOST", "0.0.0.0"),
            root_url=get("ROOT_URL", ""),
            database_url=get("DATABASE_URL"),
            amqp_url=get("AMQP_URL"),
            data_dir=Path(get("DATA_DIR", ".taskjournal")),
            root_client_id=get("ROOT_CLIENT_ID"),
            root_access_token=get("ROOT_ACCESS_TOKEN"),
            clients_file=Path(clients_file) if clients_file else None,
            anonymous_scopes=cls.anonymous_scopes if anonymous is None else tuple(anonymous.split()),
            claim_timeout=float(get("CLAIM_TIMEOUT", 1200)),
            claimwork_wait=float(get("CLAIMWORK_WAIT", 20)),
            resolver_interval=float(get("RESOLVER_INTERVAL", 1)),
            executor_threads=int(get("EXECUTOR_THREADS", 16)),
            log_format=get("LOG_FORMAT", "json"),
            instance_name=get("INSTANCE"),
        )


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)
