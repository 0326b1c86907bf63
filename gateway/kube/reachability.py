"""Whether the Kubernetes API answers, from the requests the gateway makes anyway.

``observe`` wraps the one ``ApiClient``'s REST client, so every request (the informer's lists
and watches, Secret reads, TokenRequests, TokenReviews) tells ``Reachability`` its outcome,
and /readyz can say how long the API has not answered without asking it each time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

from gateway.tasks import stop

# With no request seen for this long (or a quarter of the threshold, if shorter), /readyz
# sends one of its own (GET /version).
PROBE_AFTER_SECONDS = 5.0
# GET /version is answered at once by a live API server.
PROBE_READ_SECONDS = 5.0


class Reachability:
    """When the Kubernetes API last answered, and since when it has not.

    An answer is any HTTP status below 500, a refusal included (the API is there); a 5xx, a
    timeout or a connection error is a failure. Requests are what the gateway makes anyway
    (the informer's lists and watches, Secret reads, TokenReviews); when none has been seen
    for a while (``PROBE_AFTER_SECONDS`` at most), ``readiness`` starts one probe in the
    background, so an idle gateway, or one taken out of service because the API went away,
    still finds out, and finds out when it is back.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.last_answer_at: float | None = None
        self.failing_since: float | None = None
        self.last_error = ""
        self._seen_at: float | None = None
        self._probe: asyncio.Task[None] | None = None

    def answered(self) -> None:
        self.last_answer_at = self._seen_at = self._clock()
        self.failing_since = None

    def failed(self, error: str) -> None:
        self._seen_at = now = self._clock()
        if self.failing_since is None:
            self.failing_since = now
        self.last_error = error

    def readiness(
        self, threshold: float, probe: Callable[[], Awaitable[None]] | None = None
    ) -> tuple[bool, str]:
        """``(ok, detail)``: not ok once the API has failed every request for ``threshold``."""
        now = self._clock()
        # Often enough that an API gone quiet is noticed well within the threshold.
        probe_after = min(PROBE_AFTER_SECONDS, threshold / 4)
        idle = self._seen_at is None or now - self._seen_at >= probe_after
        if probe is not None and idle and self._probe is None:
            self._probe = asyncio.create_task(self._run_probe(probe), name="kube-reachability")
        if self.failing_since is None:
            return True, "answering" if self.last_answer_at is not None else "not asked yet"
        down = now - self.failing_since
        detail = f"the Kubernetes API has not answered for {down:.0f} s: {self.last_error}"
        if down < threshold:
            return True, f"{detail} (not ready after {threshold:g} s)"
        return False, detail

    async def _run_probe(self, probe: Callable[[], Awaitable[None]]) -> None:
        try:
            # Its outcome reaches this object through the observed client, like any request.
            with contextlib.suppress(ApiException, aiohttp.ClientError, TimeoutError, OSError):
                await probe()
        finally:
            self._probe = None

    async def aclose(self) -> None:
        task, self._probe = self._probe, None
        if task is not None:
            await stop(task)


def observe(api: Any, reachability: Reachability) -> None:
    """Report every request of ``api``'s REST client, and its outcome, to ``reachability``."""
    rest = api.rest_client
    request = rest.request

    async def observed(*args: Any, **kwargs: Any) -> Any:
        try:
            response = await request(*args, **kwargs)
        except ApiException as exc:
            # Status 0: the client refused to build the request; the API was never asked.
            if exc.status and exc.status >= 500:
                reachability.failed(f"HTTP {exc.status} {exc.reason or ''}".strip())
            elif exc.status:
                reachability.answered()
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reachability.failed(_failure(exc))
            raise
        status = getattr(response, "status", 200)
        if status >= 500:
            reachability.failed(f"HTTP {status}")
        else:
            reachability.answered()
        return response

    # The generated GET/POST/... helpers call self.request, so the instance attribute wins.
    rest.request = observed


def _failure(exc: BaseException) -> str:
    # Names the kind of failure and the address, never a header or a token.
    if isinstance(exc, TimeoutError):
        return "the request timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port} ({exc.os_error.strerror or exc.os_error})"
    return type(exc).__name__


async def probe_version(api: Any, request_timeout: tuple[float, float]) -> None:
    """One cheap request the API answers to anyone: GET /version (its status is what counts)."""
    url = f"{api.configuration.host.rstrip('/')}/version"
    await api.rest_client.request("GET", url, _request_timeout=request_timeout)
