"""A tiny OIDC issuer for JWT caller tests: discovery, a JWKS, and tokens signed with PyJWT.

It serves ``/.well-known/openid-configuration`` and ``/jwks`` on a loopback port, holds one
RSA and one EC P-256 key (each with a kid), counts JWKS fetches, and can rotate or fail.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa

AUDIENCE = "lakegate"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(key: PrivateKey, kid: str) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}
    jwk = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig", "alg": "ES256"}


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
        signer = key or self.keys[kid]
        alg = "RS256" if isinstance(signer, rsa.RSAPrivateKey) else "ES256"
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
        return jwt.encode(body, signer, algorithm=alg, headers={"kid": kid})

    def app(self) -> web.Application:
        async def discovery(_request: web.Request) -> web.Response:
            if self.failing:
                return web.Response(status=503)
            return web.json_response({"issuer": self.url, "jwks_uri": f"{self.url}/jwks"})

        async def jwks(_request: web.Request) -> web.Response:
            self.jwks_fetches += 1
            if self.failing:
                return web.Response(status=503)
            return web.json_response(self.jwks())

        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", discovery)
        app.router.add_get("/jwks", jwks)
        return app
