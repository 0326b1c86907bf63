"""API keys, configured only as hashes and compared in constant time.

A presented key is hashed with SHA-256 and compared with every configured ``sha256`` entry,
all of them, with ``hmac.compare_digest``: neither the time taken nor an early exit tells an
attacker how close a guess came or which entry it hit. Salted entries (scrypt, PBKDF2) are
deliberately slow; they are derived in worker threads, at most ``SALTED_WORKERS`` at a time
with at most ``SALTED_QUEUE`` more waiting (beyond that a 503 with Retry-After:
``gateway.callers.salted``), and the answer is cached by the key's SHA-256 so a caller pays
the cost once a few minutes, not once a request.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.callers.salted import CheckSlots
from gateway.callers.types import Identity, Refused
from gateway.settings import ApiKeySettings, SaltedHash, parse_salted_hash, parse_selector
from gateway.singleflight import TtlCache

# A key longer than this is not one of ours; refusing it early bounds the hashing work.
MAX_KEY_CHARS = 512
SALTED_WORKERS = 2
# Checks that may wait for a worker: a burst of new keys is served, a flood is refused (503).
SALTED_QUEUE = 32
SALTED_SUCCESS_SECONDS = 300.0
SALTED_FAILURE_SECONDS = 5.0
_NO_MATCH = "the API key is not known"


def sha256_hex(key: str) -> str:
    """The value to configure as ``sha256`` for ``key``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def derive(salted: SaltedHash, key: str) -> bytes:
    """The salted digest of ``key`` under ``salted``'s scheme and parameters. CPU-bound."""
    secret = key.encode("utf-8")
    if salted.scheme == "scrypt":
        n, r, p = salted.parameters
        return hashlib.scrypt(
            secret,
            salt=salted.salt,
            n=n,
            r=r,
            p=p,
            maxmem=256 * n * r + 1024 * 1024,
            dklen=len(salted.digest),
        )
    (iterations,) = salted.parameters
    return hashlib.pbkdf2_hmac("sha256", secret, salted.salt, iterations, len(salted.digest))


# Derives a salted digest (``derive``); tests pass an instrumented one to watch the cap.
Hasher = Callable[[SaltedHash, str], bytes]


@dataclass(frozen=True, slots=True)
class _Entry:
    identity: Identity
    sha256: bytes | None
    salted: SaltedHash | None


def identity_for(key: ApiKeySettings) -> Identity:
    selectors = (parse_selector(key.namespace_selector),) if key.namespace_selector else ()
    return Identity(
        subject=f"apikey:{key.name}",
        method="api_key",
        namespaces=frozenset(key.namespaces),
        selectors=selectors,
        default_namespace=key.default_namespace,
    )


class ApiKeyAuthenticator:
    def __init__(
        self,
        keys: Sequence[ApiKeySettings],
        *,
        hasher: Hasher = derive,
        workers: int = SALTED_WORKERS,
        queue: int = SALTED_QUEUE,
    ) -> None:
        self._entries = tuple(
            _Entry(
                identity_for(k),
                bytes.fromhex(k.sha256) if k.sha256 else None,
                parse_salted_hash(k.hash) if k.hash else None,
            )
            for k in keys
        )
        self._salted = tuple((e.salted, e.identity) for e in self._entries if e.salted)
        self._hasher = hasher
        self.slots = CheckSlots(workers, queue)
        self._cache: TtlCache[str, Identity | str] = TtlCache(10_000)

    async def authenticate(self, key: str) -> Identity:
        if not key or len(key) > MAX_KEY_CHARS:
            raise Refused(_NO_MATCH)
        digest = hashlib.sha256(key.encode("utf-8")).digest()
        found: Identity | None = None
        for entry in self._entries:
            # No early exit: every entry is compared whatever matched before it.
            if entry.sha256 is not None and hmac.compare_digest(digest, entry.sha256):
                found = entry.identity
        if found is None and self._salted:
            outcome = await self._cache.get(digest.hex(), lambda: self._check_salted(key))
            found = outcome if isinstance(outcome, Identity) else None
        if found is None:
            raise Refused(_NO_MATCH)
        return found

    async def _check_salted(self, key: str) -> tuple[Identity | str, float]:
        async with self.slots.turn():
            found = await asyncio.to_thread(self._match_salted, key)
        if found is None:
            return _NO_MATCH, SALTED_FAILURE_SECONDS
        return found, SALTED_SUCCESS_SECONDS

    def _match_salted(self, key: str) -> Identity | None:
        found: Identity | None = None
        for salted, identity in self._salted:
            if hmac.compare_digest(self._hasher(salted, key), salted.digest):
                found = identity
        return found

    async def aclose(self) -> None:
        await self._cache.aclose()
