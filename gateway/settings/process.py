"""How the gateway process itself runs: its server, its ledger, its logs and its poller."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from gateway.settings.base import Frozen


class ServerSettings(Frozen):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)


class StoreSettings(Frozen):
    backend: Literal["sqlite"] = "sqlite"
    sqlite_path: str = "lakegate.db"

    @field_validator("backend", mode="before")
    @classmethod
    def _known(cls, value: object) -> object:
        # Refused by name until it exists, so an HA overlay applied early fails clearly.
        if isinstance(value, str) and value.lower() in ("postgresql", "postgres"):
            raise ValueError(
                f"'{value}' is not available yet (the PostgreSQL ledger is issue 15); use "
                "sqlite with one replica (deploy/overlays/single)"
            )
        return value


class LoggingSettings(Frozen):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class PollerSettings(Frozen):
    min_interval_seconds: float = Field(default=5.0, gt=0)
    max_interval_seconds: float = Field(default=60.0, gt=0)
    batch_size: int = Field(default=200, ge=1)
    # How long a submission waits for Databricks before the caller gets 202 SUBMITTING and the
    # poller carries on with the same idempotency token.
    inline_submit_seconds: float = Field(default=10.0, gt=0, le=120)
    submit_deadline_seconds: float = Field(default=3600.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> PollerSettings:
        if self.max_interval_seconds < self.min_interval_seconds:
            raise ValueError("max_interval_seconds must not be below min_interval_seconds")
        return self
