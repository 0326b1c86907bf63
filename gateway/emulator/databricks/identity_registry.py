"""Principals and their credentials, held in memory: PATs, OAuth secrets, issued tokens.

Issued access tokens are ES256 JWTs signed with a key made at start-up, because real
workspace OAuth tokens are JWTs and clients (and their log redaction) meet that shape. Their
signature is never what makes them valid: only presence in ``_issued`` does, so revocation is
a dictionary delete.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.emulator.databricks.identity_config import (
    AccountFederationPolicy,
    FederationPolicy,
    Principal,
    PrincipalsUpdate,
    ServicePrincipalConfig,
    UserConfig,
)

# Expired tokens are dropped on issuance every so many issues, so a long demo stays bounded
# without a background task.
_SWEEP_EVERY = 256


class RegistryError(Exception):
    """An admin request that contradicts what the registry holds (status 404 or 409)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _ServicePrincipal:
    principal: Principal
    secrets: list[str] = field(default_factory=list)
    policies: list[FederationPolicy] = field(default_factory=list)


@dataclass(frozen=True)
class IssuedToken:
    principal: Principal
    expires_at: float
    scope: str


class Registry:
    """The emulated workspace's principals and every credential that proves one."""

    def __init__(self, *, issuer_kid: str = "lakegate-emulator") -> None:
        self._users: dict[str, Principal] = {}
        self._sps: dict[str, _ServicePrincipal] = {}
        self._pats: dict[str, Principal] = {}
        self._issued: dict[str, IssuedToken] = {}
        self._account_policies: list[AccountFederationPolicy] = []
        self._issues_since_sweep = 0
        self._signing_key = ec.generate_private_key(ec.SECP256R1())
        self._kid = issuer_kid

    # -- principals ---------------------------------------------------------------------

    def add(self, update: PrincipalsUpdate) -> None:
        """Merge users, service principals and policies; all-or-nothing on a conflict."""
        self._check_conflicts(update)
        for user in update.users:
            self._add_user(user)
        for sp in update.service_principals:
            self._add_service_principal(sp)
        self._account_policies.extend(update.federation_policies)

    def _check_conflicts(self, update: PrincipalsUpdate) -> None:
        for sp in update.service_principals:
            known = self._sps.get(sp.application_id)
            if known is not None and known.principal.name != sp.name:
                raise RegistryError(
                    409,
                    f"application_id {sp.application_id} belongs to {known.principal.name!r}",
                )
        new_pats: list[tuple[str, str]] = [
            (p.get_secret_value(), u.name) for u in update.users for p in u.pats
        ]
        new_pats += [
            (p.get_secret_value(), sp.application_id)
            for sp in update.service_principals
            for p in sp.pats
        ]
        for pat, owner in new_pats:
            holder = self._pats.get(pat)
            if holder is not None and owner not in (holder.name, holder.application_id):
                raise RegistryError(409, "a PAT is already held by another principal")

    def _add_user(self, user: UserConfig) -> None:
        principal = self._users.setdefault(user.name, Principal(user.name, None))
        for pat in user.pats:
            self._pats[pat.get_secret_value()] = principal

    def _add_service_principal(self, sp: ServicePrincipalConfig) -> None:
        entry = self._sps.setdefault(
            sp.application_id, _ServicePrincipal(Principal(sp.name, sp.application_id))
        )
        entry.secrets.extend(s.get_secret_value() for s in sp.secrets)
        entry.policies.extend(sp.federation_policies)
        for pat in sp.pats:
            self._pats[pat.get_secret_value()] = entry.principal

    def find(self, name_or_application_id: str) -> Principal | None:
        """A user by e-mail, or a service principal by application id, then by name."""
        if user := self._users.get(name_or_application_id):
            return user
        if sp := self._sps.get(name_or_application_id):
            return sp.principal
        for entry in self._sps.values():
            if entry.principal.name == name_or_application_id:
                return entry.principal
        return None

    def federated_subject(self, subject: str) -> Principal | None:
        """The principal an account-wide policy's subject claim names.

        Databricks puts a user's e-mail or a service principal's application id in that
        claim; display names are not unique, so they are not accepted.
        """
        if user := self._users.get(subject):
            return user
        sp = self._sps.get(subject)
        return sp.principal if sp is not None else None

    def service_principal(self, application_id: str) -> Principal | None:
        sp = self._sps.get(application_id)
        return sp.principal if sp is not None else None

    def policies_for(self, application_id: str) -> list[FederationPolicy]:
        sp = self._sps.get(application_id)
        return list(sp.policies) if sp is not None else []

    @property
    def account_policies(self) -> list[AccountFederationPolicy]:
        return list(self._account_policies)

    # -- secrets ------------------------------------------------------------------------

    def check_client(self, client_id: str, client_secret: str) -> Principal | None:
        """The service principal these client credentials prove, if they do."""
        sp = self._sps.get(client_id)
        if sp is None:
            return None
        # Compare against every secret so the time taken does not tell which one matched.
        matched = False
        for known in sp.secrets:
            matched |= hmac.compare_digest(known.encode(), client_secret.encode())
        return sp.principal if matched else None

    def rotate_secret(self, application_id: str, new_secret: str) -> Principal:
        sp = self._sps.get(application_id)
        if sp is None:
            raise RegistryError(404, f"no service principal with application_id {application_id}")
        sp.secrets = [new_secret]
        return sp.principal

    # -- tokens -------------------------------------------------------------------------

    def lookup(self, token: str, now: float) -> Principal | None:
        """The principal a bearer token proves at ``now``, or None."""
        if pat_owner := self._pats.get(token):
            return pat_owner
        issued = self._issued.get(token)
        if issued is None or issued.expires_at <= now:
            return None
        return issued.principal

    def expired(self, token: str) -> bool:
        """Whether ``token`` was issued here and is still held, though past its expiry."""
        return token in self._issued

    def issue(self, principal: Principal, *, now: float, expires_at: float, scope: str) -> str:
        self._issues_since_sweep += 1
        if self._issues_since_sweep >= _SWEEP_EVERY:
            self._issues_since_sweep = 0
            self._issued = {t: i for t, i in self._issued.items() if i.expires_at > now}
        claims: dict[str, Any] = {
            "sub": principal.application_id or principal.name,
            "iat": int(now),
            "exp": int(expires_at),
            "scope": scope,
            "jti": secrets.token_urlsafe(16),
        }
        if principal.application_id is not None:
            claims["client_id"] = principal.application_id
        token = jwt.encode(claims, self._signing_key, algorithm="ES256", headers={"kid": self._kid})
        self._issued[token] = IssuedToken(principal, expires_at, scope)
        return token

    def public_jwks(self) -> dict[str, Any]:
        jwk: dict[str, Any] = jwt.algorithms.ECAlgorithm.to_jwk(
            self._signing_key.public_key(), as_dict=True
        )
        return {"keys": [{**jwk, "kid": self._kid, "use": "sig", "alg": "ES256"}]}

    def revoke_token(self, token: str) -> bool:
        return self._issued.pop(token, None) is not None or self._pats.pop(token, None) is not None

    def revoke_principal(self, principal: Principal, *, include_pats: bool) -> int:
        doomed = [t for t, i in self._issued.items() if i.principal == principal]
        for token in doomed:
            del self._issued[token]
        count = len(doomed)
        if include_pats:
            pats = [t for t, p in self._pats.items() if p == principal]
            for token in pats:
                del self._pats[token]
            count += len(pats)
        return count

    def counts(self) -> dict[str, int]:
        return {
            "users": len(self._users),
            "service_principals": len(self._sps),
            "pats": len(self._pats),
            "issued_tokens": len(self._issued),
        }
