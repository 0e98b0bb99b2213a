"""Leadflow configuration: one validated ``Settings`` object, read from ``LEADFLOW_*``
environment variables and an optional ``.env`` file.

Nothing else in the code base reads ``os.environ``; callers ask ``get_settings()``.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ENV_PREFIX = "LEADFLOW_"
# The shortest LEADFLOW_API_TOKEN accepted; secrets.token_urlsafe(24), which the generated
# development token uses, is exactly this long.
MIN_API_TOKEN_CHARS = 32


class CrmBackend(StrEnum):
    local = "local"
    salesforce = "salesforce"
    hubspot = "hubspot"


class Environment(StrEnum):
    """How a process runs: ``production`` refuses embedded defaults and closes the
    development conveniences (inbox, open metrics and API docs)."""

    development = "development"
    production = "production"


class Settings(BaseSettings):
    """All knobs of a Leadflow process. See the configuration table in README.md."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        # Errors never echo a value: it may be a secret (a short API token, an API key).
        hide_input_in_errors=True,
    )

    environment: Environment = Field(
        Environment.development,
        description="development | production (case and surrounding spaces ignored)",
    )
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
        None,
        description="SQLAlchemy URL; default sqlite file in data_dir; PostgreSQL in production",
        validate_default=True,
    )

    # Web
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    public_url: str | None = Field(None, description="Base URL printed and used in links")
    api_token: SecretStr | None = Field(
        None,
        description=f"Bearer token, at least {MIN_API_TOKEN_CHARS} characters; generated "
        "into data_dir when unset in development",
        validate_default=True,
    )
    metrics_public: bool = Field(
        False, description="In production, serve /metrics without the bearer token"
    )
    api_docs_public: bool = Field(
        False,
        description="In production, serve /docs, /redoc and /openapi.json without the token",
    )
    max_body_bytes: int = 64 * 1024
    body_read_timeout_s: float = Field(
        10.0,
        gt=0,
        description="A POST /leads body not fully received within this long is refused "
        "with 408, so a client sending it slowly cannot hold the server",
    )
    max_extra_fields: int = 20

    # Admin app logins
    session_idle_minutes: float = Field(
        60, gt=0, description="An admin login unused for this long ends (idle expiry)"
    )
    session_max_hours: float = Field(
        12, gt=0, description="An admin login ends this long after it began, used or not"
    )
    login_max_failures_per_account: int = Field(
        5, ge=1, description="Failed logins to one account within the window; more get 429"
    )
    login_max_failures_per_address: int = Field(
        20, ge=1, description="Failed logins from one client address within the window"
    )
    login_window_minutes: float = Field(
        15, gt=0, description="The fixed window the failed-login limits count in"
    )

    # CRM
    crm_backend: CrmBackend = Field(
        CrmBackend.local, description="local | salesforce | hubspot (docs/crm.md)"
    )
    crm_timeout_s: float = Field(
        15.0, gt=0, description="Longest wait for one CRM call; past it the step is retried"
    )
    crm_poll_interval_s: float = Field(
        60.0,
        ge=0,
        description="How often changes made in Salesforce or HubSpot are polled (the "
        "fallback for orgs without webhooks; 0 turns polling off)",
    )

    # Salesforce: one of JWT bearer (consumer key + private key + username),
    # username-password (username + password + security token) or an access token with
    # the instance URL.
    salesforce_consumer_key: str | None = Field(None, description="Connected app's key (JWT)")
    salesforce_private_key_path: Path | None = Field(
        None, description="PEM private key of the connected app's certificate (JWT)"
    )
    salesforce_username: str | None = Field(None, description="The integration user")
    salesforce_password: SecretStr | None = None
    salesforce_security_token: SecretStr | None = None
    salesforce_login_url: str = Field(
        "https://login.salesforce.com",
        description="https://test.salesforce.com for a sandbox; http:// is honoured",
    )
    salesforce_instance_url: str | None = Field(
        None, description="With an access token: https://yourorg.my.salesforce.com"
    )
    salesforce_access_token: SecretStr | None = None
    salesforce_api_version: str = Field("62.0", pattern=r"^\d{2,3}\.0$")
    salesforce_outbound_secret: SecretStr | None = Field(
        None, description="Path secret of POST /webhooks/salesforce/{secret}"
    )
    salesforce_org_id: str | None = Field(
        None, description="Organisation id (00D…) Outbound Messages must carry"
    )

    # HubSpot
    hubspot_token: SecretStr | None = Field(None, description="Private app access token")
    hubspot_base_url: str = Field(
        "https://api.hubapi.com", description="Scheme, host and port of the API"
    )
    hubspot_client_secret: SecretStr | None = Field(
        None, description="The app's client secret: verifies webhook signatures (v3)"
    )
    hubspot_portal_id: str | None = Field(
        None,
        pattern=r"^\d{1,20}$",
        description="The HubSpot account's id: lead cards link to the contact's page",
    )
    hubspot_pipeline: str = Field("default", description="Deal pipeline of won deals")
    hubspot_won_stage: str = Field("closedwon", description="Deal stage id of a won deal")
    hubspot_lost_stage: str = Field("closedlost", description="Deal stage id of a lost deal")

    # Slack
    slack_bot_token: SecretStr | None = Field(
        None, description="Bot token (xoxb-…); without it everything goes to the inbox"
    )
    slack_signing_secret: SecretStr | None = Field(
        None, description="Verifies every request to /slack/events"
    )
    slack_app_token: SecretStr | None = Field(
        None, description="App-level token (xapp-…) for Socket Mode: leadflow slack --socket"
    )
    slack_api_url: str = Field(
        "https://slack.com/api/", description="Base of the Slack Web API (tests: a fake)"
    )
    slack_wins_channel: str = Field(
        "#wins", description="Where won deals and the weekly leaderboard are posted"
    )
    leaderboard_cron: str = Field(
        "0 9 * * 1",
        description="When the weekly leaderboard is posted (cron: minute hour day month "
        "weekday); empty turns it off",
    )
    leaderboard_timezone: str = Field("UTC", description="Time zone of leaderboard_cron")
    timezone: str = Field(
        "UTC",
        description="The installation's time zone (IANA name, e.g. Europe/Berlin): KPI "
        "periods and their days, weeks, months and quarters",
    )

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
    worker_cached_workflows: int = Field(
        400,
        ge=10,
        le=100_000,
        description="Lead workflows a worker keeps in memory between their steps "
        "(each costs about 0.35 MB); the others are replayed from their history when a "
        "timer or an event wakes them. 400 keeps a worker under 300 MB RSS however many "
        "leads are open",
    )
    worker_sticky_timeout_s: float = Field(
        5.0,
        gt=0,
        le=600,
        description="How long a lead's next workflow task waits for the worker that ran "
        "its last one before any worker may take it (Temporal's sticky queue); after a "
        "worker crash, each lead it was running resumes after this",
    )
    step_give_up_s: float = Field(
        6 * 3600.0,
        gt=0,
        description="A lifecycle step that keeps failing transiently (CRM or database "
        "down) gives up after this long and parks the lead as needs attention; an "
        "admin's retry resumes it",
    )
    lifecycle_history_events_limit: int = Field(
        2_000,
        ge=50,
        description="A lead's run continues as new past this many history events "
        "(Temporal's limit is 51,200)",
    )
    lifecycle_history_bytes_limit: int = Field(
        2_000_000,
        ge=100_000,
        description="A lead's run continues as new past this many bytes of history "
        "(Temporal's limit is 50 MB)",
    )
    default_team: str = "Inbound"

    # Intake abuse limits
    intake_flood_max_posts: int = Field(
        30, ge=1, description="Posts accepted per address within the flood window; more get 429"
    )
    intake_flood_window_s: float = Field(60.0, gt=0, description="The per-address flood window")
    resubmission_detail_cap: int = Field(
        20,
        ge=0,
        le=50,
        description="Resubmissions kept in detail per lead; later ones are only counted",
    )
    lead_id_secret: SecretStr | None = Field(
        None,
        description="Key of the lead ids (HMAC of the email); generated into data_dir in "
        "development, required in production; never change it once leads exist",
        validate_default=True,
    )

    # Bulk import of leads (docs/import.md)
    import_rate: float = Field(
        5.0,
        gt=0,
        le=1000,
        description="Rows of a bulk import handed to the lifecycle per second, at most: "
        "leave room for live web-form leads and their speed-to-lead budget",
    )
    import_max_rows: int = Field(
        200_000, ge=1, description="Rows a CSV file to import may have; more are refused"
    )
    import_max_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="Largest CSV file the admin app's upload accepts"
    )
    import_batch_rows: int = Field(
        500,
        ge=1,
        le=10_000,
        description="Rows one step of the import workflow hands over (at 10 a second, 50 s: "
        "the pause between two steps is a small share of it)",
    )
    import_rows_per_run: int = Field(
        5_000,
        ge=1,
        description="The import workflow continues as new after this many rows, so its "
        "history stays short however large the file",
    )
    import_heartbeat_timeout_s: float = Field(
        30.0,
        gt=0,
        description="A batch whose worker stopped reporting for this long (it crashed) is "
        "run again by another; rows it had started are skipped",
    )

    # leadflow dev's supervisor
    supervisor_max_restarts: int = Field(
        5,
        ge=0,
        description="leadflow dev gives up (exit 1) when one child exits more often than "
        "this within 5 minutes; each exit before that is restarted",
    )
    supervisor_backoff_s: float = Field(
        0.5,
        gt=0,
        description="Delay before the first restart of a crashed child; doubled for each "
        "further crash, up to 10 s",
    )

    log_json: bool | None = Field(
        None, description="JSON log lines; default: when stderr is not a terminal"
    )
    log_level: str = "INFO"

    @field_validator("timezone", "leaderboard_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name like Europe/Berlin)"
            ) from err
        return value

    @field_validator("environment", mode="before")
    @classmethod
    def _parse_environment(cls, value: Any) -> Any:
        if isinstance(value, Environment):
            return value
        allowed = ", ".join(e.value for e in Environment)
        text = value.strip().lower() if isinstance(value, str) else value
        if text not in set(Environment):
            raise ValueError(
                f"LEADFLOW_ENVIRONMENT must be one of {allowed} (case ignored), got {value!r}"
            )
        return text

    # The two validators below read ``environment`` from ``info.data``: it is declared
    # first, so it is validated before them (absent there when it was itself invalid).

    @field_validator("api_token")
    @classmethod
    def _strong_api_token(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None:
            if info.data.get("environment") == Environment.production:
                raise ValueError(
                    "LEADFLOW_API_TOKEN must be set when LEADFLOW_ENVIRONMENT=production"
                )
            return value
        token = value.get_secret_value()
        if len(token) < MIN_API_TOKEN_CHARS:
            raise ValueError(
                f"LEADFLOW_API_TOKEN must be at least {MIN_API_TOKEN_CHARS} characters, got "
                f"{len(token)}; generate one with: python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'"
            )
        if token != token.strip():
            raise ValueError(
                "LEADFLOW_API_TOKEN must not start or end with whitespace "
                "(HTTP servers may trim it from the Authorization header)"
            )
        return value

    @field_validator("lead_id_secret")
    @classmethod
    def _strong_lead_id_secret(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        if value is None:
            if info.data.get("environment") == Environment.production:
                raise ValueError(
                    "LEADFLOW_LEAD_ID_SECRET must be set when LEADFLOW_ENVIRONMENT=production "
                    "(the same on every replica, and never changed once leads exist)"
                )
            return value
        if len(value.get_secret_value()) < MIN_API_TOKEN_CHARS:
            raise ValueError(
                f"LEADFLOW_LEAD_ID_SECRET must be at least {MIN_API_TOKEN_CHARS} characters"
            )
        return value

    @field_validator("hubspot_base_url", "salesforce_login_url", "salesforce_instance_url")
    @classmethod
    def _origin_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A CRM endpoint is ``scheme://host[:port]``: http(s), nothing after the port."""
        if value is None:
            return value
        name = f"{ENV_PREFIX}{(info.field_name or '').upper()}"
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{name} must be an http:// or https:// URL, got {value!r}")
        try:
            parts.port  # noqa: B018 -- raises on a port that is not a number
        except ValueError:
            raise ValueError(f"{name} has an invalid port: {value!r}") from None
        if parts.path.strip("/") or parts.query or parts.fragment:
            raise ValueError(
                f"{name} takes the scheme, host and port only (like "
                f"{parts.scheme}://{parts.netloc}), got {value!r}"
            )
        return f"{parts.scheme}://{parts.netloc}"

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        production = info.data.get("environment") == Environment.production
        if value is None or not value.strip():  # unset: the SQLite file in data_dir
            if production:
                raise ValueError(
                    "LEADFLOW_DATABASE_URL must be set to a PostgreSQL URL when "
                    "LEADFLOW_ENVIRONMENT=production (postgresql+psycopg://user:pass@host/db)"
                )
            return value
        try:
            backend = make_url(value).get_backend_name().lower()
        except (ArgumentError, ValueError) as err:
            raise ValueError(
                "LEADFLOW_DATABASE_URL is not a valid SQLAlchemy URL "
                "(e.g. postgresql+psycopg://user:pass@host/db)"
            ) from err
        if production and backend != "postgresql":
            raise ValueError(
                "LEADFLOW_DATABASE_URL must point at PostgreSQL when "
                f"LEADFLOW_ENVIRONMENT=production (postgresql+psycopg://…), got {backend!r}"
            )
        return value

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.production

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
    def lead_id_secret_file(self) -> Path:
        return self.data_dir / "lead_id_secret"

    @property
    def admin_password_file(self) -> Path:
        return self.data_dir / "admin_password"

    @property
    def session_idle(self) -> timedelta:
        return timedelta(minutes=self.session_idle_minutes)

    @property
    def session_max_age(self) -> timedelta:
        return timedelta(hours=self.session_max_hours)

    @property
    def login_window(self) -> timedelta:
        return timedelta(minutes=self.login_window_minutes)

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


def configuration_problems(err: ValidationError) -> list[str]:
    """One line per problem of a refused ``Settings``, each naming its environment
    variable (``LEADFLOW_WEB_PORT: Input should be a valid integer, …``)."""
    lines = []
    for error in err.errors(include_url=False, include_input=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        field = ".".join(str(part) for part in error["loc"])
        variable = f"{ENV_PREFIX}{field.upper()}" if field else ""
        if not variable or message.startswith(variable):
            lines.append(message)
        else:
            lines.append(f"{variable}: {message}")
    return lines


def stored_secret(value: SecretStr | None, path: Path) -> str:
    """``value`` when set, else a secret read from ``path``, generated there (0600) the
    first time. For development defaults; production sets its secrets explicitly."""
    if value is not None:
        return value.get_secret_value()
    if path.exists():
        stored = path.read_text().strip()
        if len(stored) >= 32:
            return stored
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")
    return secret
