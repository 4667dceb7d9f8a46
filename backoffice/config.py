"""The one Settings object: every knob of the product, read from the environment.

Variables are prefixed `BACKOFFICE_` except `DATABASE_URL` (see shared/contracts/cli.md);
an optional `.env` in the working directory is read too.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKOFFICE_", env_file=".env", extra="ignore")

    # repr=False: a URL may hold a password, and a logged or printed Settings must not show it.
    database_url: str | None = Field(
        default=None,
        repr=False,
        validation_alias=AliasChoices("DATABASE_URL"),
        description="PostgreSQL URL; unset means the embedded server under data_dir/postgres.",
    )
    # The application's own login (a member of backoffice_app); unset: DATABASE_URL acting as that role.
    app_database_url: str | None = Field(default=None, repr=False)
    data_dir: Path = Path(".data")
    landing_dir: Path = Path("data/landing")
    export_dir: Path = Path("data/exports")
    archive_dir: Path | None = None  # the Parquet archive for analytics; unset: data_dir/archive
    documents_dir: Path = Path("data/documents")
    documents_max_bytes: int = 20 * 1024 * 1024  # per uploaded file
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_sender: str = "no-reply@backoffice.localhost"  # the From of every mail
    smtp_max_attempts: int = 10  # then a mail is marked failed and shown in the Outbox
    # Where the accounting export goes (backoffice.export.delivery.configured): a local folder
    # (export_dir), an SFTP server or an S3-compatible object store; a CSV layout file adds a
    # mapped CSV for a given accounting tool to every delivery.
    export_delivery: Literal["directory", "sftp", "s3"] = "directory"
    export_csv_layout: Path | None = None  # TOML or JSON, see docs/export.md
    export_sftp_host: str | None = None
    export_sftp_port: int = 22
    export_sftp_user: str | None = None
    export_sftp_password: SecretStr | None = None
    export_sftp_key_file: Path | None = None  # a private key; used instead of the password when set
    export_sftp_known_hosts: Path | None = None  # unset: ~/.ssh/known_hosts; the server's key is always checked
    export_sftp_dir: str = "."  # remote folder; each day goes to <dir>/<YYYY-MM-DD>/
    export_s3_bucket: str | None = None
    export_s3_prefix: str = ""  # keys are <prefix>/<YYYY-MM-DD>/<file>
    export_s3_endpoint: str | None = None  # unset: AWS; else any S3-compatible service's URL
    export_s3_region: str | None = None  # credentials come from the usual AWS_* variables or profile
    siren: str = "000000000"
    fec_separator: Literal["tab", "pipe"] = "tab"  # between the FEC's fields
    fec_encoding: Literal["iso-8859-15", "utf-8"] = "iso-8859-15"  # the FEC's character set
    billing_tolerance: Decimal = Decimal("1.00")
    refund_approval_threshold: Decimal = Decimal("1000.00")  # above it, a second person approves
    # Largest supplier invoice difference (absolute, per dossier and supplier) an accountant may write off.
    write_off_threshold: Decimal = Decimal("50.00")
    provider_decline_rate: Decimal = Decimal("0.05")  # the payment simulator's random declines
    provider_seed: int = 0  # the simulator's draws are a function of (seed, idempotency key)
    balance_retry_days: tuple[int, ...] = (1, 3, 7)  # a declined charge is retried so long after the first
    default_locale: str = "fr"
    # Login throttling (backoffice.services.sessions): so many failures within the window lock a
    # login (or a client, counted over every login it tried) for the cool-down.
    login_max_failures: int = 5
    login_max_failures_per_client: int = 20
    login_failure_window_seconds: int = 900
    login_cooldown_seconds: int = 900
    session_idle_minutes: int = 30  # a session unused this long ends
    session_absolute_hours: int = 12  # and any session ends this long after its login

    @property
    def archive_root(self) -> Path:
        return self.archive_dir if self.archive_dir is not None else self.data_dir / "archive"

    @property
    def embedded_pgdata(self) -> Path:
        return (self.data_dir / "postgres").resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
