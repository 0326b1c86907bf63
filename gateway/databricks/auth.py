"""What the Jobs client needs from a credential: a bearer token, and a way to report it refused.

The client never knows where a token comes from (a PAT, OAuth M2M, federation); identity
builds credentials that satisfy ``TokenProvider`` structurally.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@runtime_checkable
class TokenProvider(Protocol):
    """A source of bearer tokens for one Databricks identity."""

    async def token(self) -> str:
        """A token that is valid now (refreshing first if needed)."""
        ...

    def invalidate(self, token: str) -> None:
        """Databricks refused ``token``: drop it if it is still the cached one.

        Compare-and-invalidate: when many calls fail with the same token at once, only the
        first drop has an effect, so a token fetched meanwhile by another caller survives.
        """
        ...


@runtime_checkable
class AzureManagementTokens(Protocol):
    """A credential of an Entra service principal, which can also prove itself to Azure
    Resource Manager (X-Databricks-Azure-SP-Management-Token)."""

    async def azure_management_token(self) -> str | None:
        """A management-resource token, or None when the credential is not an Entra one."""
        ...


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A bearer token and when it stops working (epoch seconds; ``None``: it does not expire)."""

    value: str = field(repr=False)
    expires_at: float | None = None

    def seconds_left(self, now: float) -> float | None:
        return None if self.expires_at is None else self.expires_at - now
