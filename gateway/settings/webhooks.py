"""Webhook settings: per namespace in the tenants file, and the guard's in gateway.yaml.

Per namespace (or under ``defaults``; a namespace's block replaces the defaults' whole):

- ``url``: the namespace's default endpoint, used when a run has no accepted ``callback_url``;
- ``allowed_url_prefixes``: a run's ``callback_url`` must start with one of them;
- ``secret`` (a Secret in the namespace, key ``secret``), ``secret_env`` or ``secret_value``:
  one or more ``whsec_`` secrets separated by spaces (all sign during a rotation); exactly one
  source when anything is to be sent;
- ``state_changes``: also send ``run.state_changed`` for transitions that do not end a run.

In gateway.yaml, ``webhooks`` holds the URL guard (``allow_networks``, ``allow_http``) and the
dispatcher's knobs (retry schedule, timeout, concurrency).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from gateway.settings.base import Frozen, SecretRef
from gateway.webhooks.signing import parse_secrets

DEFAULT_RETRY_SCHEDULE = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


def _check_url(value: str, key: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{key}: '{value}' is not an absolute http(s) URL")
    if parts.username or parts.password:
        raise ValueError(f"{key}: '{value}' carries credentials; use the webhook secret")
    return value


class TenantWebhooks(Frozen):
    url: str | None = None
    allowed_url_prefixes: tuple[str, ...] = ()
    # A Secret of the namespace holding the webhook secret(s) under key ``secret``.
    secret: SecretRef | None = None
    secret_env: str | None = None
    secret_value: SecretStr | None = None
    state_changes: bool = False

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value, "url")

    @field_validator("allowed_url_prefixes")
    @classmethod
    def _prefixes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for prefix in value:
            _check_url(prefix, "allowed_url_prefixes")
            if urlsplit(prefix).path in ("",):
                raise ValueError(
                    f"allowed_url_prefixes: '{prefix}' must end its host with '/', or "
                    "https://a.example would also allow https://a.example.evil.test"
                )
        return value

    @model_validator(mode="after")
    def _secret(self) -> TenantWebhooks:
        sources = [s for s in (self.secret, self.secret_env, self.secret_value) if s is not None]
        if len(sources) > 1:
            raise ValueError("webhooks: give at most one of 'secret', 'secret_env', 'secret_value'")
        if not sources and (self.url or self.allowed_url_prefixes):
            raise ValueError(
                "webhooks: deliveries are signed; give 'secret' (a Secret in the namespace, "
                "key 'secret'), 'secret_env' or 'secret_value'"
            )
        if self.secret_value is not None:
            parse_secrets(self.secret_value.get_secret_value())
        return self

    def allows(self, url: str) -> bool:
        """Whether a run's ``callback_url`` starts with one of the allowed prefixes."""
        return any(url.startswith(prefix) for prefix in self.allowed_url_prefixes)


class WebhooksSettings(Frozen):
    allow_networks: tuple[str, ...] = ()
    allow_http: bool = False
    retry_schedule_seconds: tuple[float, ...] = Field(default=DEFAULT_RETRY_SCHEDULE, min_length=1)
    timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    max_concurrency: int = Field(default=64, ge=1)
    max_per_endpoint: int = Field(default=8, ge=1)
    poll_interval_seconds: float = Field(default=0.2, gt=0, le=60)
    # A claimed row's lease, renewed every third of it while the delivery is in flight: how
    # long a dead replica's rows wait for another dispatcher. Bounded as store.lease_seconds.
    lease_seconds: float = Field(default=30.0, ge=1, le=600)

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"allow_networks: '{cidr}' is not a CIDR") from exc
        return value

    @field_validator("retry_schedule_seconds")
    @classmethod
    def _schedule(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(delay < 0 for delay in value):
            raise ValueError("retry_schedule_seconds: delays are seconds, zero or more")
        if value[0] != 0:
            raise ValueError(
                "retry_schedule_seconds: the first entry is the first try, made when the "
                "event is written; it must be 0"
            )
        return value
