"""Every setting of Meta Insights, declared once: type, default, description, environment name.

Values come from the process environment and a `.env` file in the working directory (the
environment wins). `load_settings()` turns any bad value into one `ConfigError` line that names
the variable and what is allowed, so start-up fails before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from insights_core.errors import ConfigError
from insights_core.models import BREAKDOWN_FAMILIES, BreakdownFamily

DEFAULT_CONVERSION_ACTION_TYPES = ("omni_purchase", "purchase", "offsite_conversion.fb_pixel_purchase")
"""The purchase family in order of preference. `omni_purchase`, `purchase` and the pixel type report
the same purchases, so they are never summed: in each row the first listed type present counts,
and revenue comes from that same type in `action_values` (see design, correctness rules)."""


class Settings(BaseSettings):
    """The product's configuration. Field aliases are the environment variable names."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True, frozen=True
    )

    mode: Literal["stub", "live"] = Field(
        "stub", alias="META_INSIGHTS_MODE", description="`stub` (demo account) or `live` (Marketing API)"
    )
    data_dir: Path = Field(
        Path("data"), alias="INSIGHTS_DATA_DIR", description="DuckDB file, snapshots, control db and logs"
    )
    sync_interval_minutes: int = Field(
        30, alias="INSIGHTS_SYNC_INTERVAL_MINUTES", ge=1, le=1440, description="scheduled sync period"
    )
    sync_enabled: bool = Field(
        True, alias="INSIGHTS_SYNC_ENABLED", description="false: the worker only serves Sync now requests"
    )
    rate_limit_retry_delay: float = Field(
        60,
        alias="META_API_RATE_LIMIT_RETRY_DELAY",
        ge=0,
        le=3600,
        description="base seconds to wait on a throttling error",
    )
    max_retries: int = Field(
        3,
        alias="META_API_MAX_RETRIES",
        ge=0,
        le=20,
        description="retries per request before the entity counts as an error",
    )
    max_days_back: int = Field(
        365,
        alias="INSIGHTS_MAX_DAYS_BACK",
        ge=1,
        le=1131,
        description="upper bound for days_back (Meta keeps 37 months of insights)",
    )
    # the environment name is kept from the original specification (a contract); what it sets is this
    report_runs_in_flight: int = Field(
        5,
        alias="INSIGHTS_DEFAULT_BATCH_SIZE",
        ge=1,
        le=100,
        description="live: how many async report runs are in flight at once",
    )
    lookback_days: int = Field(
        28,
        alias="INSIGHTS_LOOKBACK_DAYS",
        ge=1,
        le=90,
        description="scheduled syncs re-read this many recent days (Meta restates them)",
    )
    backfill_days: int = Field(
        90,
        alias="INSIGHTS_BACKFILL_DAYS",
        ge=1,
        description="days a first scheduled sync reads when nothing is stored yet",
    )
    access_token: SecretStr | None = Field(None, alias="META_ACCESS_TOKEN", description="live: access token")
    app_id: str | None = Field(None, alias="META_APP_ID", description="live: app id")
    app_secret: SecretStr | None = Field(None, alias="META_APP_SECRET", description="live: app secret")
    ad_account_ids: Annotated[tuple[str, ...], NoDecode] = Field(
        (), alias="META_AD_ACCOUNT_IDS", description="live: comma-separated act_... ids"
    )
    graph_url: str = Field(
        "https://graph.facebook.com",
        alias="META_GRAPH_URL",
        description="base URL the SDK talks to (a proxy, or the local emulator in tests)",
    )
    api_version: str | None = Field(
        None,
        alias="META_API_VERSION",
        pattern=r"^v\d+\.\d+$",
        description="Graph API version, e.g. v23.0 (default: the SDK's)",
    )
    report_poll_seconds: float = Field(
        5,
        alias="META_REPORT_POLL_SECONDS",
        ge=0.001,
        le=300,
        description="live: longest wait between two status checks of an async report run (checks start at 1 s)",
    )
    report_max_days: int = Field(
        31,
        alias="META_REPORT_MAX_DAYS",
        ge=1,
        le=1131,
        description="live: days per async report run; longer windows are cut into runs of this many days",
    )
    insights_page_size: int = Field(
        500,
        alias="META_INSIGHTS_PAGE_SIZE",
        ge=1,
        le=5000,
        description="live: rows per page when reading report results and entity lists",
    )
    conversion_action_types: Annotated[tuple[str, ...], NoDecode] = Field(
        DEFAULT_CONVERSION_ACTION_TYPES,
        alias="META_CONVERSION_ACTION_TYPES",
        description="comma-separated action types in order of preference: per row the first present counts "
        "as conversions (never a sum of them); revenue from the same type in action_values",
    )
    breakdowns: Annotated[tuple[BreakdownFamily, ...], NoDecode] = Field(
        BREAKDOWN_FAMILIES,
        alias="INSIGHTS_BREAKDOWNS",
        description="comma-separated segment families collected beside the totals (age_gender, country, "
        "placement, device_platform); empty: none",
    )
    duckdb_memory_limit: str = Field(
        "512MB",
        alias="INSIGHTS_DUCKDB_MEMORY_LIMIT",
        pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="memory DuckDB may use in the worker before it spills to <data dir>/tmp (e.g. 512MB, 2GB)",
    )
    stub_campaigns: int = Field(
        100, alias="INSIGHTS_STUB_CAMPAIGNS", ge=1, le=100_000, description="stub: campaigns in the demo account"
    )
    stub_adsets_per_campaign: int = Field(
        5, alias="INSIGHTS_STUB_ADSETS_PER_CAMPAIGN", ge=1, le=1000, description="stub: ad sets per campaign"
    )
    stub_ads_per_adset: int = Field(
        3, alias="INSIGHTS_STUB_ADS_PER_ADSET", ge=1, le=1000, description="stub: ads per ad set"
    )
    stub_accounts: int = Field(
        1,
        alias="INSIGHTS_STUB_ACCOUNTS",
        ge=1,
        le=1000,
        description="stub: demo ad accounts of that shape each (several let many workers share them out)",
    )
    stub_error_rate: float = Field(
        0.0,
        alias="INSIGHTS_STUB_ERROR_RATE",
        ge=0,
        le=1,
        description="stub: share of entities whose fetch fails in a sync, to demo error handling and alerts",
    )
    auth_config: Path | None = Field(
        None,
        alias="INSIGHTS_AUTH_CONFIG",
        description="dashboard users and roles (YAML, bcrypt hashes); default <data dir>/auth.yaml",
    )
    cookie_key: SecretStr | None = Field(
        None,
        alias="INSIGHTS_COOKIE_KEY",
        description="secret that signs the dashboard's re-login cookie (32+ characters); stub mode generates "
        "one in the data dir when unset",
    )
    cookie_name: str = Field(
        "meta_insights_auth",
        alias="INSIGHTS_COOKIE_NAME",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="name of the dashboard's re-login cookie",
    )
    cookie_expiry_days: float = Field(
        7.0,
        alias="INSIGHTS_COOKIE_EXPIRY_DAYS",
        ge=0,
        le=90,
        description="days a login is remembered in the browser; 0: log in on every visit",
    )
    login_max_attempts: int = Field(
        5,
        alias="INSIGHTS_LOGIN_MAX_ATTEMPTS",
        ge=1,
        le=100,
        description="failed dashboard logins per user before the user is locked out for a while",
    )
    login_lockout_minutes: float = Field(
        15.0,
        alias="INSIGHTS_LOGIN_LOCKOUT_MINUTES",
        gt=0,
        le=1440,
        description="how long a user stays locked out after too many failed logins",
    )

    # manager insights (insights_core/manager): pacing, fatigue, anomalies, forecasts, alert delivery
    pacing_tolerance_percent: float = Field(
        15.0,
        alias="INSIGHTS_PACING_TOLERANCE_PERCENT",
        gt=0,
        le=100,
        description="pacing: spend to date this far (in %) above or below the expected spend is over or under pace",
    )
    fatigue_ctr_drop_percent: Annotated[tuple[float, float], NoDecode] = Field(
        (15.0, 25.0),
        alias="INSIGHTS_FATIGUE_CTR_DROP_PERCENT",
        description="fatigue: CTR drop (last 7 days against the 7 before, in %) for a warning,critical",
    )
    fatigue_cpm_rise_percent: Annotated[tuple[float, float], NoDecode] = Field(
        (15.0, 25.0),
        alias="INSIGHTS_FATIGUE_CPM_RISE_PERCENT",
        description="fatigue: CPM rise (last 7 days against the 7 before, in %) for a warning,critical",
    )
    fatigue_frequency: Annotated[tuple[float, float], NoDecode] = Field(
        (2.2, 2.8),
        alias="INSIGHTS_FATIGUE_FREQUENCY",
        description="fatigue: last 7 days' frequency (impressions-weighted mean of daily frequency) for a "
        "warning,critical",
    )
    fatigue_min_spend: float = Field(
        20.0,
        alias="INSIGHTS_FATIGUE_MIN_SPEND",
        ge=0,
        description="fatigue: an ad needs this much spend in each of the two weeks to be judged",
    )
    anomaly_z: float = Field(
        3.5,
        alias="INSIGHTS_ANOMALY_Z",
        gt=0,
        le=50,
        description="anomalies: robust z (distance from the weekday median in scaled MADs) that counts as unusual",
    )
    anomaly_baseline_weeks: int = Field(
        6,
        alias="INSIGHTS_ANOMALY_BASELINE_WEEKS",
        ge=4,
        le=8,
        description="anomalies: same weekdays of this many previous weeks form a day's baseline",
    )
    anomaly_min_spend: float = Field(
        10.0,
        alias="INSIGHTS_ANOMALY_MIN_SPEND",
        ge=0,
        description="anomalies: a campaign-day needs this much baseline median spend to be judged (thin data is not)",
    )
    forecast_horizon_days: int = Field(
        14, alias="INSIGHTS_FORECAST_HORIZON_DAYS", ge=7, le=30, description="forecasts: days ahead"
    )
    forecast_min_history_days: int = Field(
        56,
        alias="INSIGHTS_FORECAST_MIN_HISTORY_DAYS",
        ge=28,
        le=1131,
        description="forecasts: days of history needed before a series is forecast at all",
    )
    alert_cooldown_hours: float = Field(
        24.0,
        alias="INSIGHTS_ALERT_COOLDOWN_HOURS",
        ge=0,
        le=24 * 90,
        description="alerts: an alert still firing is delivered again only after this many hours",
    )
    alert_webhook_url: SecretStr | None = Field(
        None,
        alias="INSIGHTS_ALERT_WEBHOOK_URL",
        description="alerts: Slack-compatible incoming webhook (JSON {text}); a secret, never logged",
    )
    alert_webhook_timeout_seconds: float = Field(
        10.0, alias="INSIGHTS_ALERT_WEBHOOK_TIMEOUT_SECONDS", gt=0, le=120, description="alerts: webhook timeout"
    )
    alert_delivery_retries: int = Field(
        3,
        alias="INSIGHTS_ALERT_DELIVERY_RETRIES",
        ge=0,
        le=10,
        description="alerts: retries per channel (backoff doubling from 1 s) before the delivery counts as failed",
    )
    alert_smtp_host: str | None = Field(None, alias="INSIGHTS_ALERT_SMTP_HOST", description="alerts: SMTP server")
    alert_smtp_port: int = Field(25, alias="INSIGHTS_ALERT_SMTP_PORT", ge=1, le=65535, description="alerts: SMTP port")
    alert_smtp_starttls: bool = Field(
        False, alias="INSIGHTS_ALERT_SMTP_STARTTLS", description="alerts: upgrade the SMTP connection with STARTTLS"
    )
    alert_smtp_user: str | None = Field(None, alias="INSIGHTS_ALERT_SMTP_USER", description="alerts: SMTP login")
    alert_smtp_password: SecretStr | None = Field(
        None, alias="INSIGHTS_ALERT_SMTP_PASSWORD", description="alerts: SMTP password"
    )
    alert_email_from: str = Field(
        "meta-insights@localhost", alias="INSIGHTS_ALERT_EMAIL_FROM", description="alerts: sender address"
    )
    alert_email_to: Annotated[tuple[str, ...], NoDecode] = Field(
        (), alias="INSIGHTS_ALERT_EMAIL_TO", description="alerts: comma-separated recipients (none: no e-mail)"
    )
    stub_scenarios: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        alias="INSIGHTS_STUB_SCENARIOS",
        description="stub: comma-separated shapes to plant (overpacing, fatigue, anomaly), for demos and tests",
    )

    store: Literal["duckdb", "ducklake"] = Field(
        "duckdb",
        alias="INSIGHTS_STORE",
        description="`duckdb` (one file, one worker; the default) or `ducklake` (PostgreSQL catalog, many workers)",
    )
    catalog_url: SecretStr | None = Field(
        None,
        alias="INSIGHTS_CATALOG_URL",
        description="ducklake: PostgreSQL URL (postgresql://user:pass@host:port/db) of the catalog and shared state",
    )
    lake_data_path: str | None = Field(
        None,
        alias="INSIGHTS_LAKE_DATA_PATH",
        description="ducklake: shared directory or s3://bucket/prefix for the Parquet files",
    )
    s3_endpoint: str | None = Field(
        None, alias="INSIGHTS_S3_ENDPOINT", description="ducklake on s3://: host:port of an S3-compatible store"
    )
    s3_access_key_id: str | None = Field(
        None, alias="INSIGHTS_S3_ACCESS_KEY_ID", description="ducklake on s3://: key id"
    )
    s3_secret_access_key: SecretStr | None = Field(
        None, alias="INSIGHTS_S3_SECRET_ACCESS_KEY", description="ducklake on s3://: secret key"
    )
    s3_region: str = Field("us-east-1", alias="INSIGHTS_S3_REGION", description="ducklake on s3://: region")
    s3_use_ssl: bool = Field(True, alias="INSIGHTS_S3_USE_SSL", description="ducklake on s3://: https to the endpoint")
    lease_seconds: int = Field(
        60,
        alias="INSIGHTS_LEASE_SECONDS",
        ge=10,
        le=3600,
        description="ducklake: an account lease a worker stops renewing is taken over after this",
    )

    @field_validator(
        "fatigue_ctr_drop_percent",
        "fatigue_cpm_rise_percent",
        "fatigue_frequency",
        "alert_email_to",
        "stub_scenarios",
        mode="before",
    )
    @classmethod
    def _split_manager_lists(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("fatigue_ctr_drop_percent", "fatigue_cpm_rise_percent", "fatigue_frequency")
    @classmethod
    def _check_warning_critical(cls, value: tuple[float, float]) -> tuple[float, float]:
        warning, critical = value
        if not 0 < warning <= critical:
            raise ValueError(f"two numbers warning,critical with 0 < warning <= critical, got {warning},{critical}")
        return value

    @field_validator("stub_scenarios")
    @classmethod
    def _check_scenarios(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - {"overpacing", "fatigue", "anomaly"})
        if unknown:
            raise ValueError(f"scenarios are overpacing, fatigue, anomaly; got {', '.join(unknown)}")
        return value

    @field_validator("ad_account_ids", "conversion_action_types", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("breakdowns", mode="before")
    @classmethod
    def _check_breakdowns(cls, value: object) -> object:
        # checked before pydantic's literal check, whose message lists no valid names in one line
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, (tuple, list)):
            unknown = [v for v in value if v not in BREAKDOWN_FAMILIES]
            if unknown:
                raise ValueError(
                    f"unknown breakdown family {', '.join(map(repr, unknown))}; valid: {', '.join(BREAKDOWN_FAMILIES)}"
                )
            return tuple(dict.fromkeys(value))  # a family named twice is collected once
        return value

    @field_validator("ad_account_ids")
    @classmethod
    def _check_account_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for account_id in value:
            digits = account_id.removeprefix("act_")
            if not digits.isdigit():
                raise ValueError(f"ad account ids look like act_1234567890, got {account_id!r}")
        return tuple(a if a.startswith("act_") else f"act_{a}" for a in value)

    @field_validator("conversion_action_types")
    @classmethod
    def _check_action_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one action type is needed")
        return value

    @field_validator("graph_url")
    @classmethod
    def _check_graph_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check_cross_field(self) -> Settings:
        if self.backfill_days > self.max_days_back:
            raise ValueError(
                f"INSIGHTS_BACKFILL_DAYS ({self.backfill_days}) must not exceed "
                f"INSIGHTS_MAX_DAYS_BACK ({self.max_days_back})"
            )
        if self.store == "ducklake":
            missing = [
                name
                for name, value in (
                    ("INSIGHTS_CATALOG_URL", self.catalog_url),
                    ("INSIGHTS_LAKE_DATA_PATH", self.lake_data_path),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"INSIGHTS_STORE=ducklake needs {' and '.join(missing)}")
        if self.catalog_url is not None and not self.catalog_url.get_secret_value().startswith(
            ("postgresql://", "postgres://")
        ):
            raise ValueError("INSIGHTS_CATALOG_URL must be a postgresql:// URL")
        return self

    def require_live_credentials(self) -> None:
        """Raise ConfigError naming what is missing before a live sync touches the network."""
        missing = [
            name
            for name, value in (("META_ACCESS_TOKEN", self.access_token), ("META_AD_ACCOUNT_IDS", self.ad_account_ids))
            if not value
        ]
        if missing:
            raise ConfigError(f"live mode needs {' and '.join(missing)} (set them in the environment or .env)")

    @property
    def db_path(self) -> Path:
        return self.data_dir / "insights.duckdb"

    @property
    def snapshot_dir(self) -> Path:
        return self.data_dir / "snapshots"

    @property
    def current_snapshot_link(self) -> Path:
        return self.data_dir / "current.duckdb"

    @property
    def control_db_path(self) -> Path:
        return self.data_dir / "control.sqlite"

    @property
    def auth_config_path(self) -> Path:
        return self.auth_config or self.data_dir / "auth.yaml"

    @property
    def alerts_db_path(self) -> Path:
        return self.data_dir / "alerts.sqlite"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def log_path(self) -> Path:
        return self.log_dir / "meta_insights.log"

    def secret_values(self) -> list[str]:
        """Values that must never appear in a log line, a report or a page."""
        secrets = (
            self.access_token,
            self.app_secret,
            self.cookie_key,
            self.alert_webhook_url,
            self.alert_smtp_password,
            self.catalog_url,
            self.s3_secret_access_key,
        )
        return [s.get_secret_value() for s in secrets if s and s.get_secret_value()]


def _describe_error(error: ErrorDetails) -> str:
    field_name = error["loc"][0] if error["loc"] else None
    field = Settings.model_fields.get(str(field_name)) if field_name else None
    env_name = (field.alias if field else None) or (str(field_name) if field_name else "settings")
    allowed = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    got_text = f" (got {got!r})" if isinstance(got, (str, int, float)) and env_name not in _SECRET_ENV else ""
    return f"{env_name}: {allowed}{got_text}"


_SECRET_ENV = {
    "META_ACCESS_TOKEN",
    "META_APP_SECRET",
    "INSIGHTS_COOKIE_KEY",
    "INSIGHTS_ALERT_WEBHOOK_URL",
    "INSIGHTS_ALERT_SMTP_PASSWORD",
}


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and `.env`; raise ConfigError with one line on bad input."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]  # pydantic validates what callers pass
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"invalid setting {_describe_error(first)}") from None


def settings_table_markdown() -> str:
    """The README's configuration table, generated from the declarations above."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, tuple):
            default = ",".join(str(d) for d in default) if default else "—"
        elif default is None:
            default = "—"
        lines.append(f"| {field.alias or name} | {default} | {field.description or ''} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(settings_table_markdown())
