"""Salted API-key checks: at most N at once, a bounded queue, and 503 with Retry-After past it.

The hasher is instrumented: it counts the checks running at once in its worker threads and
holds every check until the test lets go, so "at once" is a fact the test sets up, not a race.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from gateway.app import Overrides
from gateway.callers.api_keys import ApiKeyAuthenticator
from gateway.callers.salted import ChecksBusy, CheckSlots, wait_estimate
from gateway.callers.types import Refused
from gateway.settings import ApiKeySettings, SaltedHash
from tests.fixtures.gateway import StackFactory

WORKERS = 2
SALT = base64.b64encode(b"0123456789abcdef").decode()
DIGEST = base64.b64encode(b"\x01" * 32).decode()
HASH = f"pbkdf2_sha256$100000${SALT}${DIGEST}"


class GatedHasher:
    """A hasher that records how many checks run at once and waits for ``release``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.release = threading.Event()
        self.running = 0
        self.most = 0
        self.calls = 0

    def __call__(self, salted: SaltedHash, key: str) -> bytes:
        with self._lock:
            self.running += 1
            self.calls += 1
            self.most = max(self.most, self.running)
        try:
            # Bounded, so a broken test fails instead of leaving threads behind.
            self.release.wait(timeout=30)
            return b"\x00" * len(salted.digest)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def hasher() -> Iterator[GatedHasher]:
    """A gated hasher, let go at teardown so a failed test leaves no thread waiting."""
    gated = GatedHasher()
    yield gated
    gated.release.set()


def _authenticator(hasher: GatedHasher, queue: int) -> ApiKeyAuthenticator:
    keys = [ApiKeySettings(name="salty", hash=HASH)]
    return ApiKeyAuthenticator(keys, hasher=hasher, workers=WORKERS, queue=queue)


async def _until(condition: Any, what: str) -> None:
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never reached: {what}")


def _checks(authn: ApiKeyAuthenticator, keys: Iterable[str]) -> list[asyncio.Task[Any]]:
    return [asyncio.create_task(authn.authenticate(k)) for k in keys]


@pytest.mark.parametrize(
    ("mean", "admitted", "workers", "seconds"),
    [(0.1, 34, 2, 2.0), (1.0, 34, 2, 17.0), (0.2, 1, 2, 1.0), (0.0, 0, 2, 1.0), (2.5, 3, 2, 5.0)],
)
def test_the_wait_estimate_counts_rounds_of_workers_and_is_at_least_a_second(
    mean: float, admitted: int, workers: int, seconds: float
) -> None:
    """Retry-After is the admitted checks' rounds times a check's mean time, at least 1 s."""
    assert wait_estimate(mean, admitted, workers) == seconds


async def test_no_more_than_the_workers_run_at_once_however_many_wait(
    hasher: GatedHasher,
) -> None:
    """Ten different keys at once: two hash, eight wait their turn, and all end refused."""
    authn = _authenticator(hasher, queue=8)
    tasks = _checks(authn, (f"lgk_wrong_{i}" for i in range(10)))
    await _until(lambda: hasher.calls == WORKERS and authn.slots.admitted == 10, "all admitted")
    assert hasher.running == WORKERS
    hasher.release.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(o, Refused) for o in outcomes), outcomes
    assert hasher.calls == 10
    assert hasher.most == WORKERS
    await authn.aclose()


async def test_past_the_queue_checks_are_refused_at_once_with_a_retry_delay(
    hasher: GatedHasher,
) -> None:
    """With 2 running and 3 waiting, 3 more keys hear ChecksBusy at once, and are not cached:
    once the queue drains, the same key is checked (and refused as unknown)."""
    authn = _authenticator(hasher, queue=3)
    tasks = _checks(authn, (f"lgk_wrong_{i}" for i in range(8)))
    await _until(lambda: sum(t.done() for t in tasks) >= 3, "three refused")
    busy = [t for t in tasks if t.done()]
    assert len(busy) == 3
    for task in busy:
        error = task.exception()
        assert isinstance(error, ChecksBusy), error
        assert error.status == 503
        assert error.transient
        assert error.retry_after >= 1
    # A check holds its slot before its thread starts hashing (see the HTTP test below).
    await _until(lambda: hasher.calls >= WORKERS, "both workers hashing")
    assert hasher.calls == WORKERS
    assert authn.slots.admitted == WORKERS + 3
    hasher.release.set()
    rest = await asyncio.gather(*(t for t in tasks if t not in busy), return_exceptions=True)
    assert all(isinstance(o, Refused) for o in rest), rest
    assert authn.slots.admitted == 0
    with pytest.raises(Refused):
        await authn.authenticate(f"lgk_wrong_{tasks.index(busy[0])}")
    assert hasher.most == WORKERS
    await authn.aclose()


async def test_slots_need_a_worker() -> None:
    """A limiter without a worker, or with a negative queue, is a programming error."""
    with pytest.raises(ValueError, match="worker"):
        CheckSlots(0, 1)
    with pytest.raises(ValueError, match="queue"):
        CheckSlots(1, -1)


def _stack_callers() -> dict[str, Any]:
    return {
        "methods": ["api_key"],
        "api_keys": [{"name": "salty", "hash": HASH, "namespaces": ["team-00"]}],
    }


async def test_over_http_a_full_queue_is_a_503_problem_with_retry_after_on_both_apis(
    gateway_stack_factory: StackFactory, hasher: GatedHasher
) -> None:
    """The gateway's own bound (2 running, 32 waiting): the 35th to 37th new keys get a 503
    problem+json with Retry-After on /v1 at once, a compat call a Databricks-shaped 503;
    once the checks end, every waiting key is answered 401, and nothing else was a 5xx."""
    overrides = Overrides(environ={}, poll_idle_seconds=0.05, api_key_hasher=hasher)
    stack = await gateway_stack_factory(
        2, gateway={"callers": _stack_callers()}, overrides=overrides
    )
    http = stack.session

    async def v1(key: str) -> tuple[int, dict[str, str], Any]:
        headers = {"Authorization": f"Bearer {key}"}
        async with http.get(f"{stack.url}/v1/namespaces/team-00/runs", headers=headers) as resp:
            return resp.status, dict(resp.headers), await resp.json(content_type=None)

    tasks = [asyncio.create_task(v1(f"lgk_http_{i}")) for i in range(37)]
    await _until(lambda: sum(t.done() for t in tasks) >= 3, "three refused over HTTP")
    busy = [t.result() for t in tasks if t.done()]
    assert len(busy) == 3
    for status, headers, problem in busy:
        assert status == 503, problem
        assert headers["Content-Type"].startswith("application/problem+json")
        assert int(headers["Retry-After"]) >= 1
        assert problem["type"].endswith("/checks-busy")
        assert problem["status"] == 503
    compat_headers = {"Authorization": "Bearer lgk_http_compat"}
    url = f"{stack.url}/api/2.1/jobs/runs/list"
    async with http.get(url, headers=compat_headers) as resp:
        assert resp.status == 503
        assert int(resp.headers["Retry-After"]) >= 1
        assert (await resp.json())["error_code"] == "TEMPORARILY_UNAVAILABLE"
    # A check holds its slot before its thread starts hashing: on a busy machine the second
    # may not have begun when the refusals came. Both begin; no third does.
    await _until(lambda: hasher.calls >= WORKERS, "both workers hashing")
    assert hasher.calls == WORKERS
    hasher.release.set()
    rest = await asyncio.gather(*(t for t in tasks if not t.done()))
    assert [status for status, _, _ in rest] == [401] * 34
    assert hasher.most == WORKERS
