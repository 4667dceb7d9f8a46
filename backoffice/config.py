"""The one Settings object: every knob of the product, read from the environment.

Variables are prefixed `BACKOFFICE_` except `DATABASE_URL` (see shared/contracts/cli.md);
an optional `.env` in the working directory is read too.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKOFFICE_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL"),
        description="PostgreSQL URL; unset means the embedded server under data_dir/postgres.",
    )
    data_dir: Path = Path(".data")
    landing_dir: Path = Path("data/landing")
    export_dir: Path = Path("data/exports")
    documents_dir: Path = Path("data/documents")
    documents_max_bytes: int = 20 * 1024 * 1024  # per uploaded file
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_sender: str = "no-reply@backoffice.localhost"  # the From of every mail
    smtp_max_attempts: int = 10  # then a mail is marked failed and shown in the Outbox
    siren: str = "000000000"
    fec_separator: Literal["tab", "pipe"] = "tab"  # between the FEC's fields
    fec_encoding: Literal["iso-8859-15", "utf-8"] = "iso-8859-15"  # the FEC's character set
    billing_tolerance: Decimal = Decimal("1.00")
    refund_approval_threshold: Decimal = Decimal("1000.00")  # above it, a second person approves
    provider_decline_rate: Decimal = Decimal("0.05")  # the payment simulator's random declines
    provider_seed: int = 0  # the simulator's draws are a function of (seed, idempotency key)
    balance_retry_days: tuple[int, ...] = (1, 3, 7)  # a declined charge is retried so long after the first
    default_locale: str = "fr"

    @property
    def embedded_pgdata(self) -> Path:
        return (self.data_dir / "postgres").resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
