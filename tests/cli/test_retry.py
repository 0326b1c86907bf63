"""The client's retry policy: Retry-After read in both forms, and honoured over the backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from gateway.cli.client import LakegateClient
from gateway.cli.retry import ClientRetry, RetryNotice, retry_after_seconds
from tests.cli.conftest import SPEC
from tests.cli.fake_gateway import FakeGateway


@pytest.mark.parametrize(
    ("header", "seconds"),
    [(None, None), ("", None), ("3", 3.0), ("1.5", 1.5), ("-4", 0.0), ("soon", None)],
)
def test_retry_after_in_seconds(header: str | None, seconds: float | None) -> None:
    """Retry-After in delta-seconds; garbage means no hint."""
    assert retry_after_seconds(header) == seconds


def test_retry_after_as_an_http_date() -> None:
    """Retry-After as an HTTP date is the time left until then."""
    header = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)

    seconds = retry_after_seconds(header)

    assert seconds is not None
    assert 110 < seconds <= 120


async def test_retry_after_is_honoured_over_the_backoff(gateway: FakeGateway) -> None:
    """A 503 with Retry-After: 0 is retried at once, whatever the backoff would have waited."""
    gateway.fail_posts = 1
    notices: list[RetryNotice] = []
    policy = ClientRetry(initial_wait=60, max_wait=60)

    async with LakegateClient(gateway.url, retry=policy, on_retry=notices.append) as client:
        submitted = await client.submit("team-a", SPEC)

    assert submitted.status == 202
    assert [(n.attempt, n.wait, n.error.status) for n in notices] == [(1, 0.0, 503)]
