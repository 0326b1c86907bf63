"""Tokens the workspace itself issued, signed with its issuer (``iss`` = the workspace URL),
as a ``TokenSource`` the Databricks emulator accepts: what a pod holds when it was handed a
Databricks-issued JWT rather than an OIDC token of its cluster."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from gateway.emulator.databricks.identity_config import Principal
from tests.support.jwt_issuer import shared_rsa_key, sign


@dataclass
class WorkspaceTokens:
    """Signs JWTs as the workspace at ``url`` and authenticates them for ``principal``."""

    url: str
    principal: Principal
    issued: set[str] = field(default_factory=set)
    authenticated: int = 0

    def token(self, *, lifetime: int = 3600, path: str = "/oidc") -> str:
        now = int(time.time())
        claims = {
            "iss": f"{self.url}{path}",
            "sub": self.principal.application_id or self.principal.name,
            "aud": "all-apis",
            "iat": now,
            "exp": now + lifetime,
        }
        value = sign(claims, shared_rsa_key(3), "workspace-key")
        self.issued.add(value)
        return value

    def authenticate(self, token: str, now: float) -> Principal | None:
        if token not in self.issued:
            return None
        self.authenticated += 1
        return self.principal

    def revoke_token(self, token: str) -> bool:
        return False

    def revoke_principal(self, principal: Principal) -> int:
        return 0

    def stats(self) -> dict[str, Any]:
        return {"authenticated": self.authenticated}
