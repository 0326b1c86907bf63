"""What every settings model shares: frozen, strict, and the checks several sections use."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

from pydantic import BaseModel, ConfigDict, field_validator

NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
# Kubernetes object names (Secrets, ServiceAccounts): RFC 1123 subdomains.
OBJECT_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\Z")
# As urlsplit gives a hostname: lower case, an IPv6 address without its brackets.
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_DEFAULT_PORTS = {"https": 443, "http": 80}


def is_loopback_host(hostname: str | None) -> bool:
    """Whether ``hostname`` is this machine: the one place plain http is allowed, because no
    one on the network can read or alter what is sent there."""
    return hostname in _LOOPBACK_HOSTS


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SecretRef(Frozen):
    """A Secret in the tenant's own namespace; never another's."""

    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not OBJECT_NAME_RE.match(value):
            raise ValueError(f"'{value}' is not a Kubernetes object name")
        return value


def normalize_host(value: str) -> str:
    """A workspace host as ``scheme://host[:port]``, the one spelling every comparison uses.

    ``ws``, ``ws/``, ``https://ws``, ``https://ws/`` and ``https://ws:443`` are one workspace
    (no scheme means https, the default port is dropped, case folds); a path, query or fragment
    (a URL pasted from the browser, ``https://ws/?o=123#job/1``) does not name another one.
    Plain http only on loopback.
    """
    text = value.strip()
    if text and "://" not in text:
        text = f"https://{text}"
    parts = _plain_url(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"'{value}' is not a URL like https://adb-123.4.azuredatabricks.net")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError(f"'{value}' uses plain http; only https is allowed off loopback")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"'{value}' has a port that is not a number from 0 to 65535") from exc
    host = parts.hostname.rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def same_host(a: str, b: str) -> bool:
    """Whether two spellings name one workspace; a spelling that is no host matches none."""
    try:
        return normalize_host(a) == normalize_host(b)
    except ValueError:
        return False


def _plain_url(value: str) -> SplitResult:
    """``value`` split, refusing what parsers read differently: a user name or password (a
    credential in the URL, or ``https://good@evil``), a backslash, inner space or control
    characters."""
    text = value.strip()
    if "\\" in text or any(ch.isspace() or not ch.isprintable() for ch in text):
        raise ValueError("the URL holds a backslash, a space or a control character")
    parts = urlsplit(text)
    if "@" in parts.netloc:
        # Not quoted: what precedes the @ may be a password.
        host = parts.netloc.rpartition("@")[2]
        raise ValueError(f"the URL for {host} holds a user name or password; give the bare host")
    return parts


def check_api_server(value: str) -> str:
    """The Kubernetes API server's URL: https, or plain http only on loopback."""
    parts = _plain_url(value)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError(f"'{value}' is not a URL like https://kubernetes.default.svc")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError(f"'{value}' uses plain http; only https is allowed off loopback")
    return value.strip()


def normalize_authority(value: str) -> str:
    """An OAuth authority such as https://login.microsoftonline.com/, with a trailing slash."""
    parts = urlsplit(value.strip())
    host = normalize_host(f"{parts.scheme}://{parts.netloc}")
    path = parts.path.rstrip("/")
    return f"{host}{path}/"


# RFC 6749 §3.3: a scope token is printable ASCII without space, '"' or '\\'.
_SCOPE_TOKEN_RE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+\Z")


def check_scopes(value: tuple[str, ...]) -> tuple[str, ...]:
    """OAuth scopes as RFC 6749 scope tokens, at least one, each once."""
    if not value:
        raise ValueError("give at least one OAuth scope (Databricks' default is all-apis)")
    for scope in value:
        if not _SCOPE_TOKEN_RE.match(scope):
            raise ValueError(f"{scope!r} is not an OAuth scope (printable, no space or quote)")
    if len(set(value)) != len(value):
        raise ValueError("an OAuth scope is named twice")
    return value


def exactly_one(owner: str, **given: object) -> None:
    """Raise unless exactly one of the named fields is set."""
    present = [name for name, value in given.items() if value is not None]
    if len(present) != 1:
        names = ", ".join(f"'{n}'" for n in given)
        raise ValueError(f"{owner}: give exactly one of {names}")
