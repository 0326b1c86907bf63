"""A JWT issuer for federation tests: one RSA key, its JWKS, and tokens signed with PyJWT.

It stands in for a Kubernetes cluster's ServiceAccount issuer (TokenRequest) or any OIDC
provider whose tokens a Databricks federation policy trusts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.databricks.auth import AccessToken

AUDIENCE = "lakegate-dbx"


@dataclass
class Issuer:
    """Signs RS256 JWTs; ``policy`` is a federation policy that trusts them."""

    key: rsa.RSAPrivateKey
    iss: str = "https://oidc.cluster.example"
    kid: str = "sa-key-1"

    @property
    def jwks_uri(self) -> str:
        return f"{self.iss}/openid/v1/jwks"

    def jwks(self) -> dict[str, Any]:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def sign(self, sub: str, *, aud: str | Sequence[str] = AUDIENCE, lifetime: int = 600) -> str:
        now = int(time.time())
        claims = {"iss": self.iss, "sub": sub, "aud": aud, "iat": now, "exp": now + lifetime}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def policy(self, subject: str, *, jwks_uri: str | None = None) -> dict[str, Any]:
        keys: dict[str, Any] = {"jwks_uri": jwks_uri} if jwks_uri else {"jwks_json": self.jwks()}
        return {"issuer": self.iss, "audiences": [AUDIENCE], "subject": subject, **keys}


def service_account_subject(namespace: str, service_account: str) -> str:
    return f"system:serviceaccount:{namespace}:{service_account}"


class Minter:
    """TokenRequest as the kube edge performs it, counted: a JWT for the ServiceAccount."""

    def __init__(self, issuer: Issuer) -> None:
        self.issuer = issuer
        self.calls: list[tuple[str, str, list[str], int]] = []

    async def __call__(
        self, namespace: str, service_account: str, audiences: list[str], expiration_seconds: int
    ) -> AccessToken:
        self.calls.append((namespace, service_account, audiences, expiration_seconds))
        subject = service_account_subject(namespace, service_account)
        value = self.issuer.sign(subject, aud=audiences, lifetime=expiration_seconds)
        return AccessToken(value, time.time() + expiration_seconds)
