"""One fake cluster: the state every handler shares, caller authentication, token checks.

``review`` judges a token as the apiserver's authenticators do (and as TokenReview reports
it): static caller tokens, then ServiceAccount JWTs signed here, whose audience must meet the
target audiences, whose times must hold (with go-jose's leeway), and whose ServiceAccount
(and bound Secret) must still exist with the UID in the claims.
"""

from __future__ import annotations

import hmac
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from gateway.emulator.clock import Clock
from gateway.emulator.kubernetes.access import Rbac, User
from gateway.emulator.kubernetes.config import KubeEmulatorConfig
from gateway.emulator.kubernetes.objects import Secret, ServiceAccount
from gateway.emulator.kubernetes.status import unauthorized
from gateway.emulator.kubernetes.store import Store
from gateway.emulator.kubernetes.tokens import (
    BadSignature,
    KeyRing,
    NotOurToken,
    PrivateKey,
    generate_key,
    go_quoted,
    load_key,
    service_account_claims,
)
from gateway.emulator.kubernetes.watch import WatchHub

CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"


@dataclass
class KubeStats:
    """What the API was asked: requests by verb, resource and status; TokenRequests per
    ServiceAccount (every authorized one, whatever its answer); TokenReview outcomes."""

    requests: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    token_requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    token_reviews: Counter[str] = field(default_factory=Counter)

    def record(self, verb: str, resource: str, status: int | str) -> None:
        self.requests[(verb, resource, str(status))] += 1

    def count(self, verb: str, resource: str, status: int | str | None = None) -> int:
        """How many ``verb`` requests on ``resource`` were answered (with ``status``)."""
        return sum(
            n
            for (v, r, s), n in self.requests.items()
            if v == verb and r == resource and (status is None or s == str(status))
        )

    def reset(self) -> None:
        self.requests.clear()
        self.token_requests.clear()
        self.token_reviews.clear()

    def as_dict(self) -> dict[str, Any]:
        by_status: Counter[str] = Counter()
        for (_, _, status), n in self.requests.items():
            by_status[status] += n
        return {
            "total": sum(self.requests.values()),
            "by_status": dict(sorted(by_status.items())),
            "requests": [
                {"verb": v, "resource": r, "status": s, "count": n}
                for (v, r, s), n in sorted(self.requests.items())
            ],
            "token_requests": {
                f"{ns}/{name}": n for (ns, name), n in sorted(self.token_requests.items())
            },
            "token_reviews": {
                "total": sum(self.token_reviews.values()),
                "authenticated": self.token_reviews["authenticated"],
                "failed": self.token_reviews["failed"],
            },
        }


@dataclass(frozen=True)
class Review:
    """A token's judgement: a user and audiences, or an error."""

    user: User | None = None
    audiences: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None

    def status_json(self) -> dict[str, Any]:
        """TokenReview ``status``; ``authenticated`` is omitempty, so a failure lacks it."""
        if self.user is None:
            return {"user": {}, "error": self.error or "invalid bearer token"}
        user: dict[str, Any] = {"username": self.user.username}
        if self.user.uid:
            user["uid"] = self.user.uid
        user["groups"] = list(self.user.groups)
        if self.extra:
            user["extra"] = self.extra
        return {"authenticated": True, "user": user, "audiences": list(self.audiences)}


def _failed(reason: str) -> Review:
    # The union authenticator aggregates its errors as "[a, b]".
    return Review(error=f"[invalid bearer token, {reason}]")


def _audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    return [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []


class Cluster:
    """Built by ``create_app``; ``base_url`` is set once the server knows its port."""

    def __init__(
        self, config: KubeEmulatorConfig, clock: Clock, signing_key: PrivateKey | None = None
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = Store.from_config(config, clock)
        self.hub = WatchHub(self.store, config.watch)
        self.rbac = Rbac()
        self.stats = KubeStats()
        tokens = config.tokens
        if signing_key is None and tokens.signing_key_pem is not None:
            signing_key = load_key(tokens.signing_key_pem.get_secret_value())
        self.keys = KeyRing(signing_key or self.new_key())
        self.base_url: str | None = None

    def new_key(self) -> PrivateKey:
        return generate_key(self.config.tokens.key_type, self.config.tokens.rsa_key_bits)

    @property
    def issuer(self) -> str:
        if self.config.issuer is not None:
            return self.config.issuer
        if self.base_url is None:
            raise RuntimeError("the issuer defaults to the server's URL: start the server first")
        return self.base_url

    @property
    def api_audiences(self) -> list[str]:
        return list(self.config.api_audiences) or [self.issuer]

    @property
    def jwks_uri(self) -> str:
        if self.config.jwks_uri is not None:
            return self.config.jwks_uri
        return f"{self.base_url or self.issuer}/openid/v1/jwks"

    def mint(
        self,
        sa: ServiceAccount,
        audiences: list[str],
        seconds: int,
        bound_secret: Secret | None = None,
    ) -> tuple[str, float]:
        """A signed token for ``sa`` and its expiry (epoch seconds)."""
        now = self.clock.now()
        claims = service_account_claims(
            issuer=self.issuer,
            sa=sa,
            audiences=audiences,
            now=now,
            seconds=seconds,
            bound_secret=bound_secret,
        )
        return self.keys.sign(claims), float(claims["exp"])

    def authenticate(self, authorization: str | None) -> User | None:
        """The caller behind an Authorization header; None without one; 401 when it fails."""
        if authorization is None:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized()
        review = self.review(
            token.strip(), [], service_accounts=self.config.accept_service_account_tokens
        )
        if review.user is None:
            raise unauthorized()
        return review.user

    def review(self, token: str, requested: list[str], *, service_accounts: bool = True) -> Review:
        implicit = self.api_audiences
        for caller in self.config.callers:
            if hmac.compare_digest(caller.token.get_secret_value().encode(), token.encode()):
                # Static tokens know no audience: they pass for the API's own audiences only.
                target = [a for a in requested or implicit if a in implicit]
                if not target:
                    return Review(error="invalid bearer token")
                return Review(User(caller.username, caller.uid, caller.groups), tuple(target))
        if not service_accounts:
            return Review(error="invalid bearer token")
        try:
            claims = self.keys.verify(token, self.issuer)
        except NotOurToken:
            return Review(error="invalid bearer token")
        except BadSignature as exc:
            return _failed(str(exc))
        token_auds = _audiences(claims)
        target = requested or implicit
        auds = [a for a in token_auds if a in target]
        if not auds:
            return _failed(
                f"token audiences {go_quoted(token_auds)} is invalid for the target audiences "
                f"{go_quoted(target)}"
            )
        problem = self._time_problem(claims) or self._object_problem(claims)
        if isinstance(problem, str):
            return _failed(problem)
        sa, jti = problem
        extra = {CREDENTIAL_ID: [f"JTI={jti}"]} if jti else {}
        groups = (
            "system:serviceaccounts",
            f"system:serviceaccounts:{sa.namespace}",
            "system:authenticated",
        )
        user = User(f"system:serviceaccount:{sa.namespace}:{sa.name}", sa.uid, groups)
        return Review(user, tuple(auds), extra)

    def _time_problem(self, claims: dict[str, Any]) -> str | None:
        now, leeway = self.clock.now(), self.config.tokens.leeway_seconds
        exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
        if isinstance(exp, int | float) and now - leeway > exp:
            return "service account token has expired"
        if isinstance(nbf, int | float) and now + leeway < nbf:
            return "service account token is not valid yet"
        if isinstance(iat, int | float) and now + leeway < iat:
            return "service account token is issued in the future"
        return None

    def _object_problem(self, claims: dict[str, Any]) -> str | tuple[ServiceAccount, str]:
        private = claims.get("kubernetes.io")
        if not isinstance(private, dict):
            return "service account token claims could not be retrieved"
        ref = private.get("serviceaccount") or {}
        sa = self.store.service_account(str(private.get("namespace")), str(ref.get("name")))
        if sa is None:
            return "service account token has been invalidated"
        if sa.uid != ref.get("uid"):
            return f"service account UID ({sa.uid}) does not match claim ({ref.get('uid')})"
        bound = private.get("secret")
        if isinstance(bound, dict):
            secret = self.store.secret(sa.namespace, str(bound.get("name")))
            if secret is None:
                return "service account token has been invalidated"
            if secret.uid != bound.get("uid"):
                return (
                    f"secret UID ({secret.uid}) does not match service account secret ref "
                    f"claim ({bound.get('uid')})"
                )
        jti = claims.get("jti")
        return sa, jti if isinstance(jti, str) else ""
