"""Leadflow configuration: one validated ``Settings`` object, read from ``LEADFLOW_*``
environment variables and an optional ``.env`` file.

Nothing else in the code base reads ``os.environ``; callers ask ``get_settings()``.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class CrmBackend(StrEnum):
    local = "local"
    salesforce = "salesforce"
    hubspot = "hubspot"


class Settings(BaseSettings):
    """All knobs of a Leadflow process. See the configuration table in README.md."""

    model_config = SettingsConfigDict(
        env_prefix="LEADFLOW_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: str = Field("development", description="development | production")
    data_dir: Path = Field(Path(".leadflow"), description="Holds the embedded databases")

    # Temporal
    temporal_address: str | None = Field(
        None, description="host:port of the Temporal frontend; default 127.0.0.1:<temporal_port>"
    )
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    temporal_namespace: str = "default"
    temporal_task_queue: str = "leadflow"
    temporal_tls: bool = False
    temporal_tls_cert_path: Path | None = None
    temporal_tls_key_path: Path | None = None
    temporal_api_key: SecretStr | None = None

    # App database
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite file in data_dir"
    )

    # Web
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    public_url: str | None = Field(None, description="Base URL printed and used in links")
    api_token: SecretStr | None = None
    max_body_bytes: int = 64 * 1024
    max_extra_fields: int = 20

    # CRM
    crm_backend: CrmBackend = CrmBackend.local

    # Slack
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None

    # Lifecycle durations (seconds) -- named settings, never literals in workflow code.
    lifecycle_idle_timeout_s: float = Field(
        90 * 24 * 3600.0,
        description="A lead with no event for this long ends its lifecycle run",
    )
    activity_timeout_s: float = Field(
        10.0,
        description="Start-to-close timeout of one lifecycle step; a step lost with a "
        "crashed worker is retried after it",
    )
    default_team: str = "Inbound"

    log_json: bool | None = Field(
        None, description="JSON log lines; default: when stderr is not a terminal"
    )
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _refuse_default_secrets_in_production(self) -> Settings:
        if self.environment == "production":
            if self.api_token is None:
                raise ValueError(
                    "LEADFLOW_API_TOKEN must be set when LEADFLOW_ENVIRONMENT=production"
                )
            if self.database_url is None or self.database_url.startswith("sqlite"):
                raise ValueError("LEADFLOW_DATABASE_URL must point at PostgreSQL in production")
        return self

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'leadflow.db').resolve()}"

    @property
    def temporal_db_file(self) -> Path:
        return self.data_dir / "temporal.db"

    @property
    def api_token_file(self) -> Path:
        return self.data_dir / "api_token"

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.web_host in ("0.0.0.0", "::") else self.web_host
        return f"http://{host}:{self.web_port}"

    @property
    def activity_timeout(self) -> timedelta:
        return timedelta(seconds=self.activity_timeout_s)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
