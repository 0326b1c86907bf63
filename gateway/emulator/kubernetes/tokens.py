"""ServiceAccount token signing: keys, ``kid``, claims, JWKS, and signature checks.

As ``pkg/serviceaccount/jwt.go`` does: RSA keys sign RS256, P-256 keys ES256; the ``kid`` is
the unpadded base64url SHA-256 of the public key's DER SubjectPublicKeyInfo; the header has
no ``typ``. Rotation adds a key that signs from then on; older keys stay in the JWKS (and
keep verifying) until removed.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from gateway.emulator.kubernetes.objects import Secret, ServiceAccount

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
# What go-jose says when no key verifies the signature; the apiserver passes it through.
BAD_SIGNATURE = "go-jose/go-jose: error in cryptographic primitive"


class NotOurToken(Exception):
    """Not a JWT, or not from this issuer: the SA authenticator passes it by, unjudged."""


class BadSignature(Exception):
    """A JWT from this issuer that none of its keys verifies."""


def generate_key(key_type: str = "RSA", rsa_bits: int = 2048) -> PrivateKey:
    if key_type == "EC":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)


def load_key(pem: str) -> PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if isinstance(key, rsa.RSAPrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise ValueError("the signing key must be an RSA or P-256 ECDSA private key")


def key_id(key: PrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private_key: PrivateKey

    @classmethod
    def of(cls, key: PrivateKey) -> SigningKey:
        alg = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        return cls(key_id(key), alg, key)

    def jwk(self) -> dict[str, Any]:
        public = self.private_key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            fields: dict[str, Any] = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            fields = ECAlgorithm.to_jwk(public, as_dict=True)
        # PyJWT adds key_ops; the apiserver's JWKS has only these members.
        fields.pop("key_ops", None)
        return {"use": "sig", **fields, "kid": self.kid, "alg": self.alg}


class KeyRing:
    """The signing keys, newest last; the newest signs."""

    def __init__(self, first: PrivateKey) -> None:
        self._keys: list[SigningKey] = [SigningKey.of(first)]

    @property
    def current(self) -> SigningKey:
        return self._keys[-1]

    @property
    def kids(self) -> list[str]:
        return [k.kid for k in self._keys]

    def rotate(self, key: PrivateKey, *, keep_old: bool = True) -> SigningKey:
        new = SigningKey.of(key)
        self._keys = [*self._keys, new] if keep_old else [new]
        return new

    def remove(self, kid: str) -> bool:
        """Retire a key (its tokens stop verifying); the signing key cannot be removed."""
        if kid == self.current.kid:
            raise ValueError("the current signing key cannot be removed; rotate first")
        before = len(self._keys)
        self._keys = [k for k in self._keys if k.kid != kid]
        return len(self._keys) < before

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk() for k in self._keys]}

    def sign(self, claims: dict[str, Any]) -> str:
        key = self.current
        return jwt.encode(
            claims, key.private_key, algorithm=key.alg, headers={"kid": key.kid, "typ": None}
        )

    def verify(self, token: str, issuer: str) -> dict[str, Any]:
        """The claims of a token this issuer signed; time and audience are the caller's job."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise NotOurToken(str(exc)) from exc
        if unverified.get("iss") != issuer:
            raise NotOurToken("another issuer")
        # The key the kid names first, then the rest, as the apiserver tries every key.
        ordered = sorted(self._keys, key=lambda k: k.kid != header.get("kid"))
        for key in ordered:
            if header.get("alg") != key.alg:
                continue
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key.private_key.public_key(),
                    algorithms=[key.alg],
                    options={
                        "verify_exp": False,
                        "verify_nbf": False,
                        "verify_iat": False,
                        "verify_aud": False,
                        "verify_iss": False,
                    },
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as exc:
                raise BadSignature(str(exc)) from exc
            return claims
        raise BadSignature(BAD_SIGNATURE)


def service_account_claims(
    *,
    issuer: str,
    sa: ServiceAccount,
    audiences: list[str],
    now: float,
    seconds: int,
    bound_secret: Secret | None = None,
) -> dict[str, Any]:
    """The claims of a bound token (``pkg/serviceaccount/claims.go``); ``aud`` is a list."""
    issued = int(now)
    private: dict[str, Any] = {
        "namespace": sa.namespace,
        "serviceaccount": {"name": sa.name, "uid": sa.uid},
    }
    if bound_secret is not None:
        private["secret"] = {"name": bound_secret.name, "uid": bound_secret.uid}
    return {
        "aud": list(audiences),
        "exp": issued + seconds,
        "iat": issued,
        "iss": issuer,
        "jti": str(uuid.uuid4()),
        "kubernetes.io": private,
        "nbf": issued,
        "sub": f"system:serviceaccount:{sa.namespace}:{sa.name}",
    }


def go_quoted(values: list[str]) -> str:
    """A string slice as Go's %q prints it: ``["a" "b"]``."""
    return "[" + " ".join(f'"{v}"' for v in values) + "]"
