"""A tiny OIDC issuer for JWT caller tests: discovery, a JWKS, and tokens signed with PyJWT.

It serves ``/.well-known/openid-configuration`` and ``/jwks`` on a loopback port, holds one
RSA and one EC P-256 key (each with a kid), counts JWKS fetches, and can rotate or fail. Keys,
JWKS entries, signing and the served app are the test tree's (``tests.support.jwt_issuer``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.jwt_issuer import PrivateKey, oidc_app, public_jwk, sign

AUDIENCE = "lakegate"


@dataclass
class JwtIssuer:
    """Signs tokens; ``url`` is both the issuer and where its documents are served."""

    keys: dict[str, PrivateKey]
    url: str = ""
    jwks_fetches: int = 0
    failing: bool = False
    published: set[str] = field(default_factory=set)

    def jwks(self) -> dict[str, Any]:
        return {
            "keys": [public_jwk(k, kid) for kid, k in self.keys.items() if kid in self.published]
        }

    def sign(
        self,
        subject: str = "repo:example-org/etl:ref:refs/heads/main",
        *,
        kid: str = "rsa-1",
        key: PrivateKey | None = None,
        aud: str | Sequence[str] = AUDIENCE,
        iss: str | None = None,
        lifetime: int = 600,
        issued_ago: int = 0,
        **claims: Any,
    ) -> str:
        now = int(time.time()) - issued_ago
        body = {
            "iss": iss or self.url,
            "sub": subject,
            "aud": aud,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            **claims,
        }
        return sign(body, key or self.keys[kid], kid)

    def app(self) -> web.Application:
        def discovery() -> dict[str, Any] | None:
            return None if self.failing else {"issuer": self.url, "jwks_uri": f"{self.url}/jwks"}

        def jwks() -> dict[str, Any] | None:
            self.jwks_fetches += 1
            return None if self.failing else self.jwks()

        return oidc_app(discovery, jwks, jwks_path="/jwks")
