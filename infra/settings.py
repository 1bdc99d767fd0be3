"""One settings object, read from the environment (and `.env` if present).

Ports and folders of the embedded stack can be moved with environment variables; giving `DATABASE_URL`,
`NATS_URL` or `TEMPORAL_ADDRESS` points the service at an external server instead of the embedded one.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.pg_access import APP_ROLE, OWNER_ROLE, role_password

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    data_dir: Path = Field(default=PROJECT_ROOT / ".data", alias="LIFEEVENTS_DATA_DIR")

    temporal_port: int = Field(default=7233, alias="TEMPORAL_PORT")
    temporal_ui_port: int = Field(default=8233, alias="TEMPORAL_UI_PORT")
    temporal_address_override: str | None = Field(default=None, alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field(default="default", alias="TEMPORAL_NAMESPACE")
    temporal_tls: bool = Field(default=False, alias="TEMPORAL_TLS")
    """Connect to Temporal over TLS (implied by an API key or a client certificate)."""
    temporal_tls_ca_file: Path | None = Field(default=None, alias="TEMPORAL_TLS_CA_FILE")
    temporal_tls_cert_file: Path | None = Field(default=None, alias="TEMPORAL_TLS_CERT_FILE")
    temporal_tls_key_file: Path | None = Field(default=None, alias="TEMPORAL_TLS_KEY_FILE")
    temporal_tls_server_name: str | None = Field(default=None, alias="TEMPORAL_TLS_SERVER_NAME")
    temporal_api_key: SecretStr | None = Field(default=None, alias="TEMPORAL_API_KEY")
    task_queue: str = Field(default="life-events", alias="TEMPORAL_TASK_QUEUE")

    nats_port: int = Field(default=4222, alias="NATS_PORT")
    nats_url_override: str | None = Field(default=None, alias="NATS_URL")
    nats_credentials_dir_override: Path | None = Field(default=None, alias="NATS_CREDENTIALS_DIR")
    """Where each NATS identity's seed (`<identity>.nk`) or credentials file (`<identity>.creds`) is; default
    `<data dir>/nats-credentials` (the embedded stack generates them there)."""
    civil_stream: str = Field(default="CIVIL", alias="NATS_CIVIL_STREAM")
    health_stream: str = Field(default="HEALTH", alias="NATS_HEALTH_STREAM")
    dlq_stream: str = Field(default="CIVIL_DLQ", alias="NATS_DLQ_STREAM")
    notify_stream: str = Field(default="NOTIFY", alias="NATS_NOTIFY_STREAM")
    dedupe_window_seconds: int = Field(default=2 * 60 * 60, alias="NATS_DEDUPE_WINDOW_SECONDS")
    civil_retention_days: float = Field(default=30, gt=0, alias="NATS_CIVIL_RETENTION_DAYS")
    """Events hold personal data: the registry keeps what it needs, the streams forget after this many days."""
    health_retention_days: float = Field(default=30, gt=0, alias="NATS_HEALTH_RETENTION_DAYS")
    dlq_retention_days: float = Field(default=90, gt=0, alias="NATS_DLQ_RETENTION_DAYS")
    """Dead letters wait this long for an operator (their reasons hold no personal data, their bytes do)."""
    notify_retention_days: float = Field(default=7, gt=0, alias="NATS_NOTIFY_RETENTION_DAYS")
    bridge_civil_durable: str = Field(default="civil-events", alias="BRIDGE_CIVIL_DURABLE")
    bridge_health_durable: str = Field(default="health-events", alias="BRIDGE_HEALTH_DURABLE")
    bridge_concurrency: int = Field(default=16, ge=1, le=256, alias="BRIDGE_CONCURRENCY")
    """Events in flight, both streams together. 8 left the worker short of births to start while a backlog waited
    (issue 10's benchmark: 8 → 16 with the larger pool, +5–15 % births/s; 64 was slower again)."""
    bridge_max_backoff_seconds: float = Field(default=30.0, alias="BRIDGE_MAX_BACKOFF_SECONDS")
    notice_dispatch_durable: str = Field(default="notice-dispatch", alias="NOTICE_DISPATCH_DURABLE")
    """The notice dispatcher's durable pull consumer on the NOTIFY stream (`notify.inbox.>`)."""
    bridge_max_deliver: int = Field(default=20, ge=1, le=10_000, alias="BRIDGE_MAX_DELIVER")
    """Deliveries of one event that fails to be handled before the bridge dead-letters it with its last error."""

    worker_workflow_tasks: int = Field(default=16, ge=1, le=1000, alias="WORKER_WORKFLOW_TASKS")
    """Workflow tasks one worker process runs at once. A birth's registry steps run as local activities inside its
    workflow task, so this is also how many births advance side by side; kept small enough that every task ends
    well inside its 10 s timeout when the process is short of CPU (a timed-out task runs its steps again)."""
    worker_local_activities: int = Field(default=20, ge=1, le=1000, alias="WORKER_LOCAL_ACTIVITIES")
    """Local-activity (registry step) slots: no more than the database pool can serve at once."""
    worker_activities: int = Field(default=20, ge=1, le=1000, alias="WORKER_ACTIVITIES")
    """Regular-activity slots (death, move, correction, lifecycle and school-plan steps)."""
    database_pool_size: int = Field(default=20, ge=1, le=500, alias="DATABASE_POOL_SIZE")
    """Connections each process keeps open to PostgreSQL (10 more under bursts): the local steps' slots and the
    bridge's events in flight both hold one while their transaction runs."""

    school_plan_cron: str = Field(default="0 2 1 * *", alias="SCHOOL_PLAN_CRON")
    """When the Temporal Schedule `school-capacity-plan` runs (jurisdiction time; applied when it is created)."""

    payload_keys: str | None = Field(default=None, alias="PAYLOAD_KEYS")
    """`id:base64key,...` (32-byte AES keys) for workflow payloads: the last encrypts, all decrypt. Unset: a key is
    generated once into `<data dir>/payload-keys`."""
    codec_server_token: str | None = Field(default=None, alias="CODEC_SERVER_TOKEN")
    codec_cors_origin: str = Field(default="http://localhost:8233", alias="CODEC_CORS_ORIGIN")

    tracing: Literal["off", "otlp", "console", "file"] = Field(default="off", alias="TRACING")
    """Where spans go: an OTLP/HTTP collector, stdout, a JSON-lines file, or nowhere (context still propagates)."""
    otlp_endpoint: str = Field(default="http://127.0.0.1:4318/v1/traces", alias="OTLP_ENDPOINT")
    traces_file: Path | None = Field(default=None, alias="TRACES_FILE")
    """For TRACING=file; default `<data dir>/traces.jsonl`."""
    metrics_port: int | None = Field(default=None, ge=0, le=65535, alias="METRICS_PORT")
    """/metrics, /healthz and /readyz of the worker (and of the bridge when both run in one process); unset: off."""
    bridge_metrics_port: int | None = Field(default=None, ge=0, le=65535, alias="BRIDGE_METRICS_PORT")
    """The same endpoints for a bridge run alone (`worker.py --bridge-only`), so the two processes never share a
    port; unset: off."""
    metrics_host: str = Field(default="127.0.0.1", alias="METRICS_HOST")

    postgres_port: int = Field(default=5433, alias="POSTGRES_PORT")
    database_url_override: str | None = Field(default=None, alias="DATABASE_URL")
    """The service's connection (its least-privileged role) to an external server."""
    database_owner_url_override: str | None = Field(default=None, alias="DATABASE_OWNER_URL")
    """The connection migrations use (the role owning the schema); unset with `DATABASE_URL`: that one."""
    database_ssl: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] | None = Field(
        default=None, alias="DATABASE_SSL")
    """TLS to PostgreSQL (asyncpg's modes); the CA for `verify-*` comes from `PGSSLROOTCERT`. Unset: as the URL
    says (an `?ssl=` in `DATABASE_URL`), else none."""

    @property
    def embedded_temporal(self) -> bool:
        return self.temporal_address_override is None

    @property
    def embedded_nats(self) -> bool:
        return self.nats_url_override is None

    @property
    def embedded_postgres(self) -> bool:
        return self.database_url_override is None

    @cached_property
    def temporal_address(self) -> str:
        return self.temporal_address_override or f"127.0.0.1:{self.temporal_port}"

    @cached_property
    def nats_url(self) -> str:
        return self.nats_url_override or f"nats://127.0.0.1:{self.nats_port}"

    @property
    def nats_credentials_dir(self) -> Path:
        return self.nats_credentials_dir_override or self.data_dir / "nats-credentials"

    @cached_property
    def database_url(self) -> str:
        """The service's connection: the application role (embedded: `lifeevents_app`, password generated)."""
        return self._asyncpg_url(self.database_url_override or self._embedded_database_url(APP_ROLE))

    @cached_property
    def database_owner_url(self) -> str:
        """The migrations' connection: the role owning the schema (embedded: `lifeevents_owner`)."""
        given = self.database_owner_url_override or self.database_url_override
        return self._asyncpg_url(given or self._embedded_database_url(OWNER_ROLE))

    @property
    def database_app_role(self) -> str | None:
        """The role the service connects as; migrations grant it what it needs on the tables."""
        return urlsplit(self.database_url).username

    def _embedded_database_url(self, role: str) -> str:
        password = role_password(self.data_dir.resolve(), role)
        return f"postgresql://{role}:{password}@127.0.0.1:{self.postgres_port}/lifeevents"

    def _asyncpg_url(self, url: str) -> str:
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+asyncpg://" + url.split("://", 1)[1]
        return with_ssl_mode(url, self.database_ssl)

    @property
    def temporal_uses_tls(self) -> bool:
        return bool(self.temporal_tls or self.temporal_api_key or self.temporal_tls_cert_file
                    or self.temporal_tls_ca_file)

    @property
    def traces_path(self) -> Path:
        return self.traces_file or self.data_dir / "traces.jsonl"

    @property
    def temporal_ui_url(self) -> str:
        return f"http://localhost:{self.temporal_ui_port}"


def with_ssl_mode(url: str, mode: str | None) -> str:
    """`url` with asyncpg's `ssl` query parameter set to `mode` (left as it is when `mode` is None)."""
    if mode is None:
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("ssl", "sslmode")] + [("ssl", mode)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment; keyword overrides (by env alias) win — used by tests."""
    return Settings(**overrides)  # type: ignore[arg-type]
