"""Settings from the environment (O2O_ prefix), in one object."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "dev-only-secret-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="O2O_", env_file=".env", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means the SQLite file")
    data_dir: Path = Path(".o2oloop")
    secret_key: str = DEFAULT_SECRET
    host: str = "127.0.0.1"
    port: int = 8000
    # One line per request from the server; off where a proxy in front already logs requests
    # (every redemption attempt is in the merchant's attempt log either way).
    access_log: bool = True
    # Threads per worker for the routes that block on the database. Few: they share one
    # interpreter lock, and past a handful they mostly take it from each other. Measured at
    # the counter on PostgreSQL, 2 workers, 32 terminals: 40 threads 131/s (p99 622 ms),
    # 8 166/s, 6 215/s, 4 231/s (p99 200 ms), 3 198/s.
    worker_threads: int = Field(default=4, ge=1, le=200)
    idempotency_ttl_hours: int = 24
    redemption_undo_minutes: int = 10
    terminal_attempts_per_minute: int = 30
    default_phone_region: str = "CN"
    # Where people reach this deployment: links in messages (one-click unsubscribe) use it.
    public_url: str = "http://127.0.0.1:8000"
    # Email over SMTP (notify.email); no host means a memory outbox, for development.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_implicit_tls: bool = False
    mail_from: str = "o2oloop <no-reply@o2oloop.local>"
    # Page cookies carry `Secure` over HTTPS and in production; set to force either way.
    cookie_secure: bool | None = None
    # Campaigns: the platform-wide global control bucket (basis points of all consumers that
    # no campaign reaches; 0 = none), the platform-wide frequency cap (one campaign message
    # per consumer per this many days; 0 = none) and quiet hours in the consumer's timezone.
    global_control_bps: int = Field(default=0, ge=0, le=5000)
    platform_cap_days: int = Field(default=1, ge=0, le=365)
    quiet_hours_start: int = Field(default=21, ge=0, le=23)
    quiet_hours_end: int = Field(default=9, ge=0, le=23)
    # Merchant webhooks (o2oloop.webhooks). Outbound requests to private, loopback and
    # link-local addresses are refused (SSRF) unless the operator allows them.
    webhooks_allow_private: bool = False
    webhooks_timeout_seconds: float = Field(default=10.0, gt=0, le=15)
    # Seconds before each attempt, counted from the previous one: Standard Webhooks'
    # example schedule (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h).
    webhooks_retry_schedule: list[float] = Field(
        default=[0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400], min_length=1
    )
    webhooks_retry_jitter: float = Field(default=0.1, ge=0, le=1)
    # An endpoint is disabled after failing without a success for this long, or this many
    # attempts in a row, whichever comes first (and at once when it answers 410 Gone).
    webhooks_disable_after_hours: float = Field(default=120.0, gt=0)
    webhooks_disable_after_failures: int = Field(default=1000, ge=1)
    # How long a worker owns a delivery it is sending; a worker that dies mid-delivery
    # leaves it to be sent again (same webhook-id) once this has passed.
    webhooks_lease_seconds: float = Field(default=60.0, gt=0)
    # How often a worker looks for retries that are due (and deliveries a dead worker left).
    webhooks_sweep_seconds: float = Field(default=5.0, gt=0)
    # Requests in flight at once per worker process.
    webhooks_concurrency: int = Field(default=8, ge=1, le=64)
    # The worker (o2oloop.jobs): attempts before a job is dead-lettered, the backoff between
    # attempts (exponential from the base, capped, full jitter), how long a claim lasts
    # without a heartbeat, how often an idle worker looks for work, and how many jobs one
    # claim takes. The in-process worker of `serve`/`up` on SQLite keeps to `share` of the
    # time while the server is answering requests, so the counter keeps the writer's turn.
    jobs_max_attempts: int = Field(default=8, ge=1, le=100)
    jobs_backoff_base_seconds: float = Field(default=2.0, ge=0)
    jobs_backoff_cap_seconds: float = Field(default=3600.0, ge=0)
    jobs_lease_seconds: float = Field(default=60.0, gt=0)
    jobs_poll_seconds: float = Field(default=0.25, gt=0, le=60)
    jobs_batch: int = Field(default=100, ge=1, le=1000)
    jobs_in_process: bool = True
    jobs_in_process_share: float = Field(default=0.05, gt=0, le=1)
    # The review log: its name in checkpoints (a schema-less URL), its Ed25519 key (32 bytes
    # in base64; empty derives it from the secret key), how often it signs a checkpoint,
    # and how long after a visit it may be reviewed.
    reviews_log_origin: str = "o2oloop.localhost/reviews"
    reviews_signing_seed: str = ""
    reviews_checkpoint_every_entries: int = Field(default=64, ge=1)
    reviews_checkpoint_every_minutes: int = Field(default=10, ge=1)
    reviews_window_days: int = Field(default=30, ge=1)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'o2oloop.db').as_posix()}"

    def check_production(self) -> None:
        """Refuse to run in production with the shipped development secret."""
        weak = self.secret_key == DEFAULT_SECRET or len(self.secret_key) < 32
        if self.env == "production" and weak:
            raise RuntimeError(
                "O2O_SECRET_KEY must be set to a random value of at least 32 characters "
                "in production (it keys code tags, phone hashes and webhook signatures)"
            )


@lru_cache
def get_settings() -> Settings:
    return Settings()
