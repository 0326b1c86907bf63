"""The emulator's configuration: frozen pydantic models, loaded from YAML.

Every field has a default, so ``EmulatorConfig()`` is a working workspace (with nobody in it:
the ``identity`` section says who may call, and ``entra`` which Entra ID apps may).
``load_config(path)`` raises ``ConfigError`` naming the file and the key of every problem.
"""

from __future__ import annotations

import math
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.emulator.databricks.entra_config import EntraConfig
from gateway.emulator.databricks.identity import IdentityConfig
from gateway.emulator.databricks.lifecycle import Outcome
from gateway.emulator.databricks.validation import ASKABLE
from gateway.errors import ConfigError

Endpoint = Literal[
    "runs/submit", "runs/get", "runs/cancel", "runs/list", "runs/get-output", "runs/cancel-all"
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OutcomeRule(_Frozen):
    """Runs whose run_name matches ``run_name`` (a glob) end with ``result``.

    Unset durations fall back to the lifecycle defaults; a task's own
    ``lakegate_emulator_result`` and ``lakegate_emulator_seconds`` override the rule.
    """

    run_name: str = "*"
    result: Outcome = Outcome.SUCCESS
    pending_seconds: float | None = Field(default=None, ge=0)
    running_seconds: float | None = Field(default=None, ge=0)
    terminating_seconds: float | None = Field(default=None, ge=0)

    @field_validator("result")
    @classmethod
    def _askable(cls, value: Outcome) -> Outcome:
        if value not in ASKABLE:
            raise ValueError(f"{value} is what the emulator decides, not a result to ask for")
        return value

    def matches(self, run_name: str) -> bool:
        return fnmatchcase(run_name, self.run_name)


class LifecycleConfig(_Frozen):
    pending_seconds: float = Field(default=1.0, ge=0)
    running_seconds: float = Field(default=5.0, ge=0)
    terminating_seconds: float = Field(default=1.0, ge=0)
    # First matching rule wins.
    rules: tuple[OutcomeRule, ...] = ()
    # Whether a submit without ``queue`` queues at the active-run limit (2.2 jobs do by
    # default; whether one-time runs do is unverified, so it is a choice).
    queue_by_default: bool = False


class RateLimit(_Frozen):
    """A token bucket: ``requests_per_second`` refill, ``burst`` capacity."""

    requests_per_second: float = Field(gt=0)
    burst: int | None = Field(default=None, ge=1)

    @property
    def capacity(self) -> int:
        return self.burst if self.burst is not None else max(1, math.ceil(self.requests_per_second))


class LimitsConfig(_Frozen):
    # Runs QUEUED..TERMINATING at once in the workspace; beyond it a submit gets 429 unless
    # it asked to queue.
    max_active_runs: int = Field(default=1000, ge=1)
    max_queued_runs: int = Field(default=1000, ge=0)
    # Per endpoint, per workspace; an endpoint not listed is not limited.
    rate_limits: dict[Endpoint, RateLimit] = Field(default_factory=dict)


class EmulatorConfig(_Frozen):
    workspace_id: int = Field(default=1_234_567_890_123_456, ge=1)
    cloud: Literal["AWS", "AZURE", "GCP"] = "AWS"
    # The URL run_page_url points at; by default the URL the request came in on.
    public_url: str | None = None
    # Above 2**32, so a client that squeezes run ids into 32 bits fails at once.
    first_run_id: int = Field(default=1_100_000_000_001, ge=1, lt=2**62)
    first_job_id: int = Field(default=700_000_000_001, ge=1, lt=2**62)
    # Seeds the random draws of probabilistic faults, for reproducible tests.
    random_seed: int | None = None
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    entra: EntraConfig = Field(default_factory=EntraConfig)
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("public_url must start with http:// or https://")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _entra_apps_are_their_service_principals(self) -> EmulatorConfig:
        # Each Entra app becomes the service principal with its client id; one also listed
        # under identity (to give it a PAT, say) must be the same principal.
        names = {sp.application_id: sp.name for sp in self.identity.service_principals}
        for client_id, name in self.entra.apps().items():
            if names.get(client_id, name) != name:
                raise ValueError(
                    f"entra app {client_id} is named {name!r}, but the identity service "
                    f"principal with that application_id is {names[client_id]!r}"
                )
        return self


def load_config(path: str | None) -> EmulatorConfig:
    """The config in the YAML file at ``path``; the defaults when ``path`` is None."""
    if path is None:
        return EmulatorConfig()
    try:
        raw: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read: {exc.strerror}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: is not valid YAML: {exc}"]) from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"{path}: the top level must be a mapping"])
    try:
        return EmulatorConfig.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"{path}: {'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise ConfigError(problems) from exc
