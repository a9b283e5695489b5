"""Settings, read from the environment (prefix ``NAMMA_``) and an optional ``.env`` file.

Every setting is documented in README.md ("Configuration"); keep the two in step.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Development defaults. Production refuses to start while any of these is still in use.
DEFAULT_SECRET_KEY = "dev-only-secret-key-change-me-in-production-0000"


class SettingsError(Exception):
    """The configuration cannot be used as it is; the message says what to change."""


# The default number of server processes stops here: each holds up to 2 × NAMMA_DB_POOL_SIZE
# connections (pool and overflow, 20 by default), and four of them (80) plus the job workers stay
# under PostgreSQL's default max_connections of 100. More cores: set NAMMA_SERVER_PROCESSES.
SERVER_PROCESSES_MAX = 4


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity, e.g. a container's cpuset)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NAMMA_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["development", "test", "production"] = "development"
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET_KEY)

    # Database: an explicit URL, or (when unset) an embedded PostgreSQL under data_dir.
    database_url: str | None = None
    # NAMMA_DATABASE_URL goes through a pooler in transaction mode (pgBouncer): a server
    # connection is the client's only for one transaction, so the application sends no
    # server-side prepared statements and no per-connection `options` (the pooler sets those
    # on its server connections; D-218). "none": a direct connection. A replica's URL through
    # the same pooler (deploy/: pgBouncer's pool `namma_replica`) takes the same arguments
    # (`kit.db.connect_arguments`).
    database_pooler: Literal["none", "transaction"] = "none"
    # A URL straight to the primary, for what needs a connection of its own for longer than a
    # transaction: the job workers (LISTEN/NOTIFY), migrations and the close of business
    # (session advisory locks) and the other `namma` commands. Unset: NAMMA_DATABASE_URL.
    database_direct_url: str | None = None
    # A streaming replica (hot standby) of that database: dashboards, reports and lists read
    # from it while its lag is under replica_max_lag_seconds, except for a person's reads in
    # the replica_sticky_seconds after their last write (D-219, docs/operations.md).
    database_replica_url: str | None = None
    replica_max_lag_seconds: float = Field(default=5.0, gt=0, le=3600)
    replica_sticky_seconds: int = Field(default=5, ge=0, le=3600)
    data_dir: Path = Path("var")
    db_pool_size: int = Field(default=10, ge=1, le=200)
    # Apply pending migrations when the server starts (under an advisory lock).
    migrate_on_start: bool = True
    # Load the demo branch, users and loans at start-up (idempotent). `namma serve --demo`.
    demo: bool = False

    # Redis for cache and rate limits; in-process fallbacks when unset.
    redis_url: str | None = None

    # HTTP server.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # TLS served by `namma serve` itself (both or neither); usually a proxy terminates TLS.
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    # HTTP server processes of `namma serve` (its `--workers`). Unset: one per CPU core, at most
    # SERVER_PROCESSES_MAX, once the processes share their state (an external database and
    # Redis); otherwise 1. See docs/decisions.md D-174.
    server_processes: int | None = Field(default=None, ge=1, le=64)
    # HTTP requests one server process works on at once; past that it answers 503 at once
    # instead of queueing work its clients give up on (`kit/admission.py`, D-206).
    server_concurrency: int = Field(default=32, ge=2, le=10_000)
    # Run a job worker inside `namma serve` (default: only on the embedded database).
    inprocess_worker: bool | None = None
    # Jobs a worker runs at once, in its one process (D-175): they overlap only their waits.
    worker_concurrency: int = Field(default=2, ge=1, le=64)
    # Seconds between polls for scheduled jobs (retries); the default 5 s of the job
    # engine would make retry delays drift, see docs/decisions.md.
    job_poll_interval: float = Field(default=0.5, gt=0, le=10)
    # A worker whose heartbeat is older than this is considered dead; its running
    # jobs are put back in the queue.
    stalled_worker_seconds: int = Field(default=60, ge=5)

    # Shown on Key Facts Statements and receipts.
    lender_name: str = "Namma Finance (demo MFI)"
    grievance_contact: str = "Grievance officer: grievance@example.com, 080-0000-0000 (10:00-17:00)"
    # How many days back a collection may be dated (an agent offline for a few days).
    collection_backdate_days: int = Field(default=7, ge=0, le=366)
    # A disbursement that takes the branch's cash (or the bank account) below zero: "warn"
    # answers it with a warning; "refuse" refuses it (409) until the money is there.
    disbursement_below_zero: Literal["warn", "refuse"] = "warn"
    # Hour of the day (India time, 0-23) at which the close of business runs for that day;
    # -1 turns the scheduled run off (run `namma cob` from your own scheduler instead).
    cob_hour: int = Field(default=20, ge=-1, le=23)
    # Stored answers of idempotent requests older than this are deleted by a daily job.
    idempotency_retention_days: int = Field(default=30, ge=1)

    # Identity and abuse limits.
    admin_totp_required: bool = True
    # Proxies whose X-Forwarded-For is believed (exact addresses); empty: the peer address.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Failed sign-in attempts (wrong passwords, codes, current passwords) per client address;
    # successes are never counted. Per account and address there is a back-off as well
    # (namma.auth.throttle).
    login_rate_limit: str = "10/5minutes"
    # A refresh token presented again this many seconds after its first use (the reply was
    # lost) answers the same new pair; later, the reuse ends the session. 0: no grace.
    refresh_grace_seconds: int = Field(default=15, ge=0, le=300)
    rate_limit_reads: str = "600/minute"  # per user
    rate_limit_writes: str = "120/minute"
    rate_limit_money: str = "60/minute"

    # Notifications to customers (docs/notifications.md). Reminders go this many days before
    # an installment's due date. E-mail is sent only when smtp_host is set (and the customer has
    # an address); SMS goes through the named provider ("log": written to the log).
    reminder_days_before: int = Field(default=2, ge=0, le=30)
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_from: str = "Namma Finance <no-reply@example.com>"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    sms_provider: Literal["log"] = "log"

    # The interactive API reference (/api/docs, /api/openapi.json). Default: served except in
    # production, where a public map of every route helps nobody but an attacker.
    api_docs: bool | None = None
    # /metrics: with a token, only for `Authorization: Bearer <token>`; without one, open
    # outside production and not served in production.
    metrics_token: SecretStr | None = None

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool | None = None  # default: JSON in production, readable otherwise

    # Tests only (refused unless env is "test"): argon2id at its minimum cost, so that the
    # suite's hundreds of logins do not each spend the standard hash's time. One test keeps the
    # standard parameters.
    insecure_fast_password_hashing: bool = False

    @model_validator(mode="after")
    def _fast_hashing_only_in_tests(self) -> Settings:
        if self.insecure_fast_password_hashing and self.env != "test":
            raise SettingsError(
                "NAMMA_INSECURE_FAST_PASSWORD_HASHING is for the test suite only (NAMMA_ENV=test)"
            )
        return self

    @model_validator(mode="after")
    def _tls_files_in_pairs(self) -> Settings:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise SettingsError("set both NAMMA_TLS_CERTFILE and NAMMA_TLS_KEYFILE, or neither")
        return self

    @model_validator(mode="after")
    def _replica_of_a_server(self) -> Settings:
        if not self.database_replica_url:
            return self
        if not self.database_url:
            raise SettingsError(
                "NAMMA_DATABASE_REPLICA_URL needs NAMMA_DATABASE_URL: a replica is a copy of a "
                "PostgreSQL server's database, not of the embedded one"
            )
        from sqlalchemy.engine import make_url

        try:
            backend = make_url(self.database_replica_url).get_backend_name()
        except Exception as exc:
            raise SettingsError(
                f"NAMMA_DATABASE_REPLICA_URL is not a usable PostgreSQL URL ({exc})"
            ) from None
        if backend not in ("postgresql", "postgres"):
            raise SettingsError(
                f"NAMMA_DATABASE_REPLICA_URL must be a PostgreSQL URL, not {backend!r}"
            )
        return self

    @model_validator(mode="after")
    def _production_is_explicit(self) -> Settings:
        if self.env != "production":
            return self
        problems = []
        if self.secret_key.get_secret_value() == DEFAULT_SECRET_KEY:
            problems.append("NAMMA_SECRET_KEY is the development default; set a random value")
        elif len(self.secret_key.get_secret_value()) < 32:
            problems.append("NAMMA_SECRET_KEY must be at least 32 characters in production")
        if not self.database_url:
            problems.append(
                "NAMMA_DATABASE_URL is not set; production needs an explicit PostgreSQL server"
            )
        if problems:
            raise SettingsError("production configuration refused: " + "; ".join(problems))
        return self

    @model_validator(mode="after")
    def _pooler_needs_a_direct_url(self) -> Settings:
        if self.database_direct_url and not self.database_url:
            raise SettingsError(
                "NAMMA_DATABASE_DIRECT_URL is set without NAMMA_DATABASE_URL; set both (or "
                "neither, for the embedded database)"
            )
        if self.database_pooler == "none":
            return self
        if not self.database_url:
            raise SettingsError(
                "NAMMA_DATABASE_POOLER=transaction needs NAMMA_DATABASE_URL (the pooler's "
                "address); the embedded database has no pooler"
            )
        if not self.database_direct_url:
            raise SettingsError(
                "NAMMA_DATABASE_POOLER=transaction needs NAMMA_DATABASE_DIRECT_URL, straight to "
                "the primary: job workers (LISTEN/NOTIFY) and migrations (advisory locks) cannot "
                "work through a transaction pooler"
            )
        if self.inprocess_worker:
            raise SettingsError(
                "NAMMA_INPROCESS_WORKER=true cannot run behind NAMMA_DATABASE_POOLER=transaction: "
                "run `namma worker` (it connects by NAMMA_DATABASE_DIRECT_URL)"
            )
        return self

    @property
    def uses_embedded_database(self) -> bool:
        return not self.database_url

    @property
    def session_database_url(self) -> str | None:
        """The URL for a connection that holds session state (LISTEN, session advisory locks):
        NAMMA_DATABASE_DIRECT_URL, else NAMMA_DATABASE_URL; None on the embedded database."""
        return self.database_direct_url or self.database_url

    @property
    def behind_transaction_pooler(self) -> bool:
        return self.database_pooler == "transaction"

    @property
    def logs_as_json(self) -> bool:
        return self.env == "production" if self.log_json is None else self.log_json

    @property
    def serves_api_docs(self) -> bool:
        return self.env != "production" if self.api_docs is None else self.api_docs

    @property
    def serves_tls(self) -> bool:
        return self.tls_certfile is not None

    @property
    def serves_metrics(self) -> bool:
        return self.metrics_token is not None or self.env != "production"

    @property
    def server_processes_default(self) -> int:
        """``server_processes`` if set; else one per usable CPU core (at most
        SERVER_PROCESSES_MAX) when the processes can share state — an external database and
        Redis for the cache and rate limits — and 1 when they cannot (the embedded database
        runs the job worker inside the server; without Redis each process would keep its own
        cache and limits)."""
        if self.server_processes is not None:
            return self.server_processes
        if self.uses_embedded_database or not self.redis_url:
            return 1
        return min(cpu_cores(), SERVER_PROCESSES_MAX)

    @property
    def runs_inprocess_worker(self) -> bool:
        if self.inprocess_worker is None:
            return self.uses_embedded_database
        return self.inprocess_worker


@lru_cache
def get_settings() -> Settings:
    return Settings()
