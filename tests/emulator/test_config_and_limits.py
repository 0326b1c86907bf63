"""Emulator config loading, and the request-rate token buckets."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.emulator.databricks.config import EmulatorConfig, LimitsConfig, RateLimit, load_config
from gateway.emulator.databricks.limits import RateLimiter, TokenBucket
from gateway.errors import ConfigError

DEMO_CONFIG = Path(__file__).parents[2] / "config" / "emulator.yaml"


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_demo_config_loads() -> None:
    """config/emulator.yaml is a valid emulator config with principals and limits."""
    config = load_config(str(DEMO_CONFIG))
    assert config.identity.service_principals
    assert config.limits.rate_limits["runs/submit"].requests_per_second == 35


def test_no_path_gives_the_defaults() -> None:
    """load_config(None) is EmulatorConfig()."""
    assert load_config(None) == EmulatorConfig()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("limits: {max_active_runs: 0}", "limits.max_active_runs"),
        ("lifecycle: {rules: [{result: USER_CANCELED}]}", "lifecycle.rules.0.result"),
        ("limits: {rate_limits: {runs/nothing: {requests_per_second: 1}}}", "rate_limits"),
        ("surprise: 1", "surprise"),
        ("public_url: ftp://x", "public_url"),
        ("[1, 2]", "top level must be a mapping"),
        ("a: [", "not valid YAML"),
    ],
)
def test_a_bad_config_names_file_and_key(tmp_path: Path, text: str, fragment: str) -> None:
    """Every problem is reported as 'file: key: message'."""
    path = tmp_path / "emulator.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert any(p.startswith(str(path)) and fragment in p for p in info.value.problems)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """An unreadable path is a ConfigError, not an OSError."""
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(str(tmp_path / "absent.yaml"))


def test_a_bucket_grants_its_burst_then_refuses() -> None:
    """A full bucket grants `burst` requests at once, then says how long to wait."""
    clock = FakeTime()
    bucket = TokenBucket(RateLimit(requests_per_second=2, burst=3), clock)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)


def test_a_bucket_refills_with_time() -> None:
    """Tokens come back at the configured rate."""
    clock = FakeTime()
    bucket = TokenBucket(RateLimit(requests_per_second=10), clock)
    for _ in range(10):
        bucket.take()
    clock.now = 0.1
    assert bucket.take() == 0.0
    assert bucket.take() > 0


def test_the_limiter_refuses_with_an_integer_retry_after() -> None:
    """A refusal carries whole seconds, rounded up, and the RPC token-bucket message."""
    clock = FakeTime()
    limits = LimitsConfig(rate_limits={"runs/submit": RateLimit(requests_per_second=0.25)})
    limiter = RateLimiter(limits, clock)
    assert limiter.check("runs/submit") is None
    refusal = limiter.check("runs/submit")
    assert refusal is not None
    assert refusal.retry_after == 4
    assert refusal.message == "SubmitRunRequest RPC token bucket limit has been exceeded."


def test_endpoints_without_a_limit_are_never_refused() -> None:
    """Only configured endpoints are limited."""
    limiter = RateLimiter(LimitsConfig(), FakeTime())
    assert all(limiter.check("runs/get") is None for _ in range(1000))
