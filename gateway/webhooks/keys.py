"""A namespace's webhook signing keys, from where its tenants block says (read at delivery).

``secret_value`` and ``secret_env`` are parsed once per settings; a Secret in the namespace
(key ``secret``) is read through the kube edge and kept ``SECRET_TTL_SECONDS``, so a rotation
reaches deliveries within that time without a read per delivery. A missing or malformed
secret fails closed: the delivery is retried later, never sent unsigned or with another
namespace's key. No key or secret text is ever logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from gateway.errors import CredentialUnavailable
from gateway.settings.webhooks import TenantWebhooks
from gateway.singleflight import TtlCache
from gateway.webhooks.signing import parse_secrets

ReadSecret = Callable[[str, str], Awaitable[Mapping[str, bytes]]]
SECRET_KEY = "secret"  # noqa: S105 - the key's name in the Secret, not a secret
SECRET_TTL_SECONDS = 30.0


class SigningKeys:
    """The keys each namespace signs with."""

    def __init__(self, read_secret: ReadSecret | None, environ: Mapping[str, str]) -> None:
        self._read_secret = read_secret
        self._environ = environ
        self._cache: TtlCache[tuple[str, str], tuple[bytes, ...]] = TtlCache(
            1024, name="lakegate-webhook-keys"
        )

    async def keys(self, namespace: str, policy: TenantWebhooks) -> tuple[bytes, ...]:
        """The keys to sign with; CredentialUnavailable when they cannot be had."""
        if policy.secret_value is not None:
            return self._parse(namespace, policy.secret_value.get_secret_value(), "secret_value")
        if policy.secret_env is not None:
            text = self._environ.get(policy.secret_env, "")
            return self._parse(namespace, text, f"environment {policy.secret_env}")
        if policy.secret is None:
            raise CredentialUnavailable(
                f"namespace '{namespace}' has no webhook secret configured",
                namespace=namespace,
                source="webhooks",
            )
        name = policy.secret.name

        async def load() -> tuple[tuple[bytes, ...], float]:
            return await self._from_secret(namespace, name), SECRET_TTL_SECONDS

        return await self._cache.get((namespace, name), load)

    async def _from_secret(self, namespace: str, name: str) -> tuple[bytes, ...]:
        source = f"secret/{name}"
        if self._read_secret is None:
            raise CredentialUnavailable(
                "webhook secret in a Secret needs Kubernetes", namespace=namespace, source=source
            )
        data = await self._read_secret(namespace, name)
        raw = data.get(SECRET_KEY)
        try:
            text = raw.decode("utf-8") if raw is not None else ""
        except UnicodeDecodeError:
            text = ""
        return self._parse(namespace, text, f"secret '{name}' key '{SECRET_KEY}'")

    @staticmethod
    def _parse(namespace: str, text: str, where: str) -> tuple[bytes, ...]:
        try:
            return parse_secrets(text)
        except ValueError as exc:
            raise CredentialUnavailable(
                f"webhook secret of namespace '{namespace}' ({where}) is unusable: {exc}",
                namespace=namespace,
                source="webhooks",
            ) from exc

    async def aclose(self) -> None:
        await self._cache.aclose()
