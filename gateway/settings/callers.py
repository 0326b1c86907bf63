"""The ``callers:`` section: how callers prove who they are, and which namespaces they get.

API keys are configured only as hashes: ``sha256`` (hex of the key's UTF-8 bytes) or a salted
``hash`` (``scrypt$<N>$<r>$<p>$<salt>$<digest>`` or ``pbkdf2_sha256$<iterations>$<salt>$<digest>``,
salt and digest in base64). Label selectors are parsed (by ``gateway.selectors``) when the
settings load, so a typo fails at start-up with the key that holds it rather than quietly
matching nothing.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from gateway.selectors import LabelSelector
from gateway.settings.base import NAMESPACE_RE, Frozen, is_loopback_host

CallerMethod = Literal["kubernetes", "api_key", "jwt", "none"]
JwtAlgorithm = Literal["RS256", "ES256"]

_KEY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")


# --- label selectors ------------------------------------------------------------------------


def parse_selector(text: str) -> LabelSelector:
    """Parse a non-empty label selector; ``ValueError`` names the part that is wrong."""
    if not text.strip():
        # An empty selector matches every namespace: too easy to write by accident.
        raise ValueError("an empty namespace_selector would match every namespace")
    return LabelSelector.parse(text)


# --- API key hashes -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SaltedHash:
    """A parsed salted key hash; ``parameters`` are scrypt's (N, r, p) or pbkdf2's (iterations,)."""

    scheme: Literal["scrypt", "pbkdf2_sha256"]
    parameters: tuple[int, ...]
    salt: bytes
    digest: bytes


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("salt and digest must be base64") from exc


# One salted check's cost caps (issue 9): scrypt's memory is 128*N*r bytes per check.
MAX_SCRYPT_BYTES = 64 * 1024 * 1024
MAX_SCRYPT_P = 4
MAX_PBKDF2_ITERATIONS = 2_000_000


def parse_salted_hash(text: str) -> SaltedHash:
    parts = text.split("$")
    try:
        if parts[0] == "scrypt" and len(parts) == 6:
            n, r, p = (int(x) for x in parts[1:4])
            if n < 2 or n & (n - 1) or n > 2**20 or not 1 <= r <= 32 or not 1 <= p <= 16:
                raise ValueError("scrypt needs N a power of two up to 2^20, r 1-32, p 1-16")
            # Every unknown key presented pays one check: keep it under 64 MiB and p runs.
            if 128 * n * r > MAX_SCRYPT_BYTES or p > MAX_SCRYPT_P:
                raise ValueError(
                    f"scrypt may use at most {MAX_SCRYPT_BYTES >> 20} MiB (128*N*r) "
                    f"and at most p={MAX_SCRYPT_P}"
                )
            return SaltedHash("scrypt", (n, r, p), _b64(parts[4]), _b64(parts[5]))
        if parts[0] == "pbkdf2_sha256" and len(parts) == 4:
            iterations = int(parts[1])
            if not 100_000 <= iterations <= 10_000_000:
                raise ValueError("pbkdf2_sha256 needs 100000 to 10000000 iterations")
            if iterations > MAX_PBKDF2_ITERATIONS:
                raise ValueError(
                    f"pbkdf2_sha256 may use at most {MAX_PBKDF2_ITERATIONS} iterations"
                )
            return SaltedHash("pbkdf2_sha256", (iterations,), _b64(parts[2]), _b64(parts[3]))
    except ValueError as exc:
        raise ValueError(f"hash: {exc}") from None
    raise ValueError(
        "hash must be scrypt$N$r$p$<salt>$<digest> or pbkdf2_sha256$<iterations>$<salt>$<digest>"
    )


# --- choosing a namespace by the Host a client called ---------------------------------------

NAMESPACE_PLACEHOLDER = "{namespace}"
_HOST_LITERAL_RE = re.compile(r"^[a-z0-9.-]*\Z")
_NAMESPACE_GROUP = r"(?P<namespace>[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)"


def compile_host_pattern(pattern: str) -> re.Pattern[str]:
    """``{namespace}.lakegate.example`` as a regex matching a whole host name (no port).

    One ``{namespace}`` and otherwise the letters, digits, dots and dashes of a DNS name, so
    the pattern cannot be written to match more than the hosts it names.
    """
    lowered = pattern.strip().lower()
    if lowered.count(NAMESPACE_PLACEHOLDER) != 1:
        raise ValueError(f"must contain {NAMESPACE_PLACEHOLDER} exactly once")
    before, _, after = lowered.partition(NAMESPACE_PLACEHOLDER)
    if not (_HOST_LITERAL_RE.match(before) and _HOST_LITERAL_RE.match(after)):
        raise ValueError(
            "apart from {namespace}, a host pattern holds only letters, digits, '.' and '-' "
            "(no port, no scheme, no wildcard)"
        )
    if not (before or after):
        raise ValueError("must hold more than {namespace}: a bare name matches any host")
    return re.compile(f"^{re.escape(before)}{_NAMESPACE_GROUP}{re.escape(after)}\\Z")


# --- the section ----------------------------------------------------------------------------


def _namespaces(values: tuple[str, ...]) -> tuple[str, ...]:
    for name in values:
        if not NAMESPACE_RE.match(name):
            raise ValueError(f"'{name}' is not a Kubernetes namespace name")
    return values


def _check_selector(value: str | None) -> str | None:
    if value is not None:
        parse_selector(value)
    return value


def _check_url(value: str, what: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError(f"{what} '{value}' is not an http(s) URL")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError(f"{what} '{value}' uses plain http; only https is allowed off loopback")
    return value.strip()


class KubernetesCallers(Frozen):
    """ServiceAccount tokens, checked with TokenReview for one of ``audiences``."""

    # Never empty: without an audience the API server checks its own, and a token minted for
    # the Kubernetes API itself would then be accepted here.
    audiences: tuple[str, ...] = Field(default=("lakegate",), min_length=1)
    cache_seconds: float = Field(default=30.0, gt=0, le=300)
    failure_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    cache_size: int = Field(default=10_000, ge=1)


class _GrantsNamespaces(Frozen):
    """The checks of ``namespaces`` and ``namespace_selector``, for the models that have them."""

    @field_validator("namespaces", check_fields=False)
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _namespaces(value)

    @field_validator("namespace_selector", check_fields=False)
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        return _check_selector(value)


class ApiKeySettings(_GrantsNamespaces):
    name: str
    sha256: str | None = None
    hash: str | None = None
    namespaces: tuple[str, ...] = ()
    namespace_selector: str | None = None
    # The namespace the Databricks-compatible API acts for when the client names none (an
    # unchanged client cannot send X-Lakegate-Namespace); it must be one the key may use.
    default_namespace: str | None = None

    @field_validator("default_namespace")
    @classmethod
    def _default(cls, value: str | None) -> str | None:
        if value is not None:
            _namespaces((value,))
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _KEY_NAME_RE.match(value):
            raise ValueError("a key name is 1-64 letters, digits, '.', '_' or '-'")
        return value

    @field_validator("sha256")
    @classmethod
    def _sha256(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256_RE.match(value.lower()):
            raise ValueError("sha256 must be 64 hex digits (the hash, never the key itself)")
        return value.lower() if value is not None else None

    @field_validator("hash")
    @classmethod
    def _hash(cls, value: str | None) -> str | None:
        if value is not None:
            parse_salted_hash(value)
        return value

    @model_validator(mode="after")
    def _one_hash(self) -> ApiKeySettings:
        if (self.sha256 is None) == (self.hash is None):
            raise ValueError(f"api key '{self.name}': give exactly one of 'sha256', 'hash'")
        return self

    def __repr__(self) -> str:
        # The hash is not the key, but there is no reason to print it either.
        return f"ApiKeySettings(name={self.name!r}, namespaces={self.namespaces!r})"


class ClaimMap(Frozen):
    """A claim whose value (a string, or each string of a list) maps to namespaces."""

    claim: str = Field(min_length=1)
    values: dict[str, tuple[str, ...]]

    @field_validator("values")
    @classmethod
    def _targets(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for targets in value.values():
            _namespaces(targets)
        return value


class JwtIssuer(Frozen):
    issuer: str
    audiences: tuple[str, ...] = Field(min_length=1)
    # Discovered from <issuer>/.well-known/openid-configuration when not given.
    jwks_uri: str | None = None
    algorithms: tuple[JwtAlgorithm, ...] = Field(default=("RS256", "ES256"), min_length=1)
    subject_claim: str = "sub"
    namespace_claim: str | None = None
    claim_map: tuple[ClaimMap, ...] = ()
    leeway_seconds: float = Field(default=30.0, ge=0, le=300)
    jwks_cache_seconds: float = Field(default=3600.0, gt=0)
    # An unknown kid refetches the JWKS, but not more often than this per issuer.
    jwks_refetch_seconds: float = Field(default=10.0, ge=0)

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        return _check_url(value, "issuer")

    @field_validator("jwks_uri")
    @classmethod
    def _jwks(cls, value: str | None) -> str | None:
        return _check_url(value, "jwks_uri") if value is not None else None


class GrantSettings(_GrantsNamespaces):
    """More namespaces for callers whose subject matches ``subject`` (a glob: ``*``, ``?``)."""

    subject: str = Field(min_length=1)
    namespaces: tuple[str, ...] = ()
    namespace_selector: str | None = None

    @model_validator(mode="after")
    def _something(self) -> GrantSettings:
        if not self.namespaces and self.namespace_selector is None:
            raise ValueError(
                f"grant for '{self.subject}': give 'namespaces', 'namespace_selector' or both"
            )
        return self


class CallersSettings(Frozen):
    """Who may call; an empty ``methods`` (the default) lets nobody in."""

    methods: tuple[CallerMethod, ...] = ()
    kubernetes: KubernetesCallers = KubernetesCallers()
    api_keys: tuple[ApiKeySettings, ...] = ()
    jwt_issuers: tuple[JwtIssuer, ...] = ()
    grants: tuple[GrantSettings, ...] = ()
    # How long a namespace's labels are trusted when a selector grant is checked.
    namespace_labels_cache_seconds: float = Field(default=30.0, ge=0, le=600)
    # The Databricks-compatible API reads the namespace from the Host a client called, e.g.
    # "{namespace}.lakegate.example"; it only chooses among the caller's own namespaces.
    namespace_host_pattern: str | None = None

    @field_validator("namespace_host_pattern")
    @classmethod
    def _host_pattern(cls, value: str | None) -> str | None:
        if value is not None:
            compile_host_pattern(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CallersSettings:
        methods = self.methods
        if len(set(methods)) != len(methods):
            raise ValueError("methods: each method may be listed once")
        if "none" in methods and len(methods) > 1:
            raise ValueError("methods: 'none' lets every caller in; it cannot be combined")
        if "api_key" in methods and not self.api_keys:
            raise ValueError("methods: 'api_key' needs at least one entry in 'api_keys'")
        if "jwt" in methods and not self.jwt_issuers:
            raise ValueError("methods: 'jwt' needs at least one entry in 'jwt_issuers'")
        names = [k.name for k in self.api_keys]
        if len(set(names)) != len(names):
            raise ValueError("api_keys: names must be unique")
        hashes = [k.sha256 or k.hash for k in self.api_keys]
        if len(set(hashes)) != len(hashes):
            raise ValueError("api_keys: two keys have the same hash")
        issuers = [i.issuer for i in self.jwt_issuers]
        if len(set(issuers)) != len(issuers):
            raise ValueError("jwt_issuers: each issuer may be listed once")
        for key in self.api_keys:
            if key.default_namespace is not None and not self._may_use(key, key.default_namespace):
                raise ValueError(
                    f"api key '{key.name}': default_namespace '{key.default_namespace}' is "
                    "not among the namespaces the key or a grant gives it"
                )
        return self

    def _may_use(self, key: ApiKeySettings, namespace: str) -> bool:
        """Whether ``namespace`` may be the key's: bound, granted, or possibly by a selector
        (labels are only known at request time, when authorization checks them again)."""
        if namespace in key.namespaces or key.namespace_selector is not None:
            return True
        subject = f"apikey:{key.name}"
        return any(
            fnmatchcase(subject, g.subject)
            and (namespace in g.namespaces or g.namespace_selector is not None)
            for g in self.grants
        )

    def uses_selectors(self) -> bool:
        """Whether any grant or key reads namespace labels (and so needs Kubernetes)."""
        return any(g.namespace_selector for g in self.grants) or any(
            k.namespace_selector for k in self.api_keys
        )
