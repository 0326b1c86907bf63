"""The test tree's JWT issuer: keys, their JWKS, tokens signed with PyJWT, and the two OIDC
documents (discovery and JWKS) an issuer serves on loopback.

Generating an RSA key is the slowest step of many tests: ``shared_rsa_key(n)`` makes the
n-th key once per run, while ``rsa_key()`` and ``ec_key()`` make a fresh one (a key nobody
trusts). ``Issuer`` stands in for a Kubernetes cluster's ServiceAccount issuer (TokenRequest),
or any OIDC provider whose tokens a Databricks federation policy trusts; other issuers of the
tree (JWT callers, the emulators' tests) build on the same keys, JWKS, signing and app.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
# A document handler; None answers 503, as an issuer that is down does.
Document = Callable[[], Mapping[str, Any] | None]

AUDIENCE = "lakegate-dbx"
DISCOVERY_PATH = "/.well-known/openid-configuration"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@functools.cache
def shared_rsa_key(index: int = 0) -> rsa.RSAPrivateKey:
    """The ``index``-th RSA key of this test run: made once, distinct from the others."""
    return rsa_key()


def algorithm(key: PrivateKey) -> str:
    return "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"


def public_jwk(key: PrivateKey, kid: str, *, with_alg: bool = True) -> dict[str, Any]:
    """The key's public half as a JWK; ``with_alg=False`` leaves out ``alg``, as some
    issuers do."""
    if isinstance(key, rsa.RSAPrivateKey):
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    entry = {**jwk, "kid": kid, "use": "sig"}
    return {**entry, "alg": algorithm(key)} if with_alg else entry


def sign(claims: Mapping[str, Any], key: PrivateKey, kid: str) -> str:
    """A JWT of ``claims`` signed with ``key`` (RS256 or ES256 by its type), naming ``kid``."""
    return jwt.encode(dict(claims), key, algorithm=algorithm(key), headers={"kid": kid})


def oidc_app(discovery: Document, jwks: Document, *, jwks_path: str) -> web.Application:
    """An issuer's discovery document and JWKS, each answered by its handler."""

    def serve(document: Document) -> Callable[[web.Request], Any]:
        async def handler(_request: web.Request) -> web.Response:
            body = document()
            return web.Response(status=503) if body is None else web.json_response(dict(body))

        return handler

    app = web.Application()
    app.router.add_get(DISCOVERY_PATH, serve(discovery))
    app.router.add_get(jwks_path, serve(jwks))
    return app


def service_account_subject(namespace: str, service_account: str) -> str:
    return f"system:serviceaccount:{namespace}:{service_account}"


@dataclass
class Issuer:
    """Signs RS256 JWTs as a cluster's ServiceAccount issuer; ``policy`` trusts them."""

    key: rsa.RSAPrivateKey = field(default_factory=shared_rsa_key)
    iss: str = "https://oidc.cluster.example"
    kid: str = "sa-key-1"

    @property
    def jwks_uri(self) -> str:
        return f"{self.iss}/openid/v1/jwks"

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self.key, self.kid)]}

    def sign(self, sub: str, *, aud: str | Sequence[str] = AUDIENCE, lifetime: int = 600) -> str:
        now = int(time.time())
        claims = {"iss": self.iss, "sub": sub, "aud": aud, "iat": now, "exp": now + lifetime}
        return sign(claims, self.key, self.kid)

    def policy(self, subject: str, *, jwks_uri: str | None = None) -> dict[str, Any]:
        keys: dict[str, Any] = {"jwks_uri": jwks_uri} if jwks_uri else {"jwks_json": self.jwks()}
        return {"issuer": self.iss, "audiences": [AUDIENCE], "subject": subject, **keys}

    def app(self) -> web.Application:
        """Discovery and the JWKS, as a cluster serves them (``iss`` must be the served URL)."""
        return oidc_app(
            lambda: {"issuer": self.iss, "jwks_uri": self.jwks_uri},
            self.jwks,
            jwks_path="/openid/v1/jwks",
        )
