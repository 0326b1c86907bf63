"""``KubeClient``: the Kubernetes edge as the composition root sees it, over one ``ApiClient``.

It owns the ``ApiClient`` (opened by ``open()``, closed by ``aclose()``). It makes informers on
that client but does not own them: whoever makes one starts it and closes it (in the gateway,
the identities' cleanup context), before this client closes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from gateway.kube.cache import Listener
from gateway.kube.connection import KubeConfig, open_api_client
from gateway.kube.informer import ServiceAccountInformer
from gateway.kube.namespaces import NamespaceReader
from gateway.kube.reachability import (
    PROBE_READ_SECONDS,
    Reachability,
    observe,
    probe_version,
)
from gateway.kube.reflector import InformerOptions
from gateway.kube.reviews import ReviewResult, TokenReviewer
from gateway.kube.secrets import SecretData, SecretReader
from gateway.kube.tokens import DEFAULT_EXPIRATION_SECONDS, MintedToken, TokenMinter
from gateway.selectors import LabelSelector


class KubeClient:
    """Secrets, Namespaces, TokenRequest, TokenReview and the ServiceAccount informer, on one
    client."""

    def __init__(self, api: Any, *, request_timeout: tuple[float, float] = (5.0, 30.0)) -> None:
        self.api = api
        self.request_timeout = request_timeout
        self._secrets = SecretReader(api, request_timeout=request_timeout)
        self._tokens = TokenMinter(api, request_timeout=request_timeout)
        self._reviews = TokenReviewer(api, request_timeout=request_timeout)
        self._namespaces = NamespaceReader(api, request_timeout=request_timeout)
        self._closed = False
        # Every request above goes through the one REST client, so one tracker sees them all.
        self.reachability = Reachability()
        observe(api, self.reachability)

    @classmethod
    async def open(cls, config: KubeConfig, *, environ: Mapping[str, str] | None = None) -> Self:
        """Build the process's ``ApiClient`` from ``config``; raises ``ConfigError``."""
        api = await open_api_client(config, environ=environ)
        return cls(api, request_timeout=config.request_timeout)

    async def read_secret(self, namespace: str, name: str) -> SecretData:
        return await self._secrets.read_secret(namespace, name)

    async def mint_token(
        self,
        namespace: str,
        service_account: str,
        *,
        audiences: Sequence[str],
        expiration_seconds: int = DEFAULT_EXPIRATION_SECONDS,
    ) -> MintedToken:
        return await self._tokens.mint_token(
            namespace, service_account, audiences=audiences, expiration_seconds=expiration_seconds
        )

    async def review(self, token: str, audiences: Sequence[str]) -> ReviewResult:
        return await self._reviews.review(token, audiences)

    async def namespace_labels(self, name: str) -> dict[str, str] | None:
        """The namespace's labels, or None when it does not exist."""
        return await self._namespaces.namespace_labels(name)

    async def readiness(self, unreachable_after: float) -> tuple[bool, str]:
        """Not ready once the API has failed every request for ``unreachable_after`` s."""
        # The probe answers fast or not at all: a long read timeout would only delay the news.
        connect, read = self.request_timeout
        timeout = (connect, min(read, PROBE_READ_SECONDS))
        return self.reachability.readiness(
            unreachable_after, lambda: probe_version(self.api, timeout)
        )

    def service_account_informer(
        self,
        *,
        selectors: Sequence[str | LabelSelector],
        namespaces: Sequence[str] | None = None,
        options: InformerOptions | None = None,
        listeners: Iterable[Listener] = (),
    ) -> ServiceAccountInformer:
        """A new, unstarted informer on this client; the caller starts it and closes it."""
        return ServiceAccountInformer(
            self.api,
            selectors=selectors,
            namespaces=namespaces,
            options=options,
            request_timeout=self.request_timeout,
            listeners=listeners,
        )

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.reachability.aclose()
        await self.api.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
