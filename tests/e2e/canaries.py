"""Canary secrets, and the search for them in everything a run leaves behind.

A canary is an opaque credential no redaction pattern recognises (letters, digits and the
``+/`` that url-encoding and base64 change), planted through one source of secrets; only
redaction by value can keep it in. ``Canaries.hits`` looks for each one plain, base64
(standard and url-safe, padded or not), url-encoded, and as any ``PIECE`` characters of its
random part (a "helpful" prefix leaks too); ``ledger_rows`` reads every column of every
table of a SQLite ledger; ``raw_exchange`` sends request bytes no HTTP client would send.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus

# Any this many characters of a canary's random part count as a leak.
PIECE = 12


def canary(prefix: str) -> str:
    """An opaque credential: a prefix no pattern knows, random hex, and '+' and '/'."""
    return f"{prefix}{secrets.token_hex(10)}+{secrets.token_hex(6)}/{secrets.token_hex(6)}"


def forms(value: str) -> dict[str, str]:
    """How ``value`` may travel: as itself, base64 (both alphabets), url-encoded."""
    raw = value.encode()
    standard = base64.b64encode(raw).decode()
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    out = {
        "plain": value,
        "base64": standard,
        "base64 unpadded": standard.rstrip("="),
        "base64url": urlsafe,
        "url-encoded": quote(value, safe=""),
        "form-encoded": quote_plus(value),
    }
    return {name: form for name, form in out.items() if form}


@dataclass
class Canaries:
    """Every canary by the source it was planted through (a name for the report)."""

    by_source: dict[str, str] = field(default_factory=dict)

    def plant(self, source: str, prefix: str) -> str:
        value = canary(prefix)
        self.by_source[source] = value
        return value

    def add(self, source: str, value: str) -> None:
        """A derived value that must not leak either (a Basic header's credentials)."""
        self.by_source[source] = value

    def values(self) -> list[str]:
        return list(self.by_source.values())

    def label(self, source: str) -> str:
        """How ``echo`` names a source's canary: words no redaction pattern keys on."""
        return f"canary-{list(self.by_source).index(source)}"

    def echo(self) -> str:
        """One text quoting every canary, as a careless upstream error body would."""
        return " ".join(f"{self.label(source)}={value}" for source, value in self.by_source.items())

    def hits(self, text: str) -> list[str]:
        """Where ``text`` holds a canary in any form, with some context, for the report."""
        found = []
        for source, value in self.by_source.items():
            for form_name, form in forms(value).items():
                at = text.find(form)
                if at >= 0:
                    found.append(f"{source} ({form_name}): {_around(text, at, len(form))!r}")
            found += [
                f"{source} (piece): {_around(text, at, PIECE)!r}" for at in _pieces(text, value)
            ]
        return found


def _pieces(text: str, value: str) -> Iterator[int]:
    for i in range(len(value) - PIECE + 1):
        at = text.find(value[i : i + PIECE])
        if at >= 0:
            yield at
            return


def _around(text: str, at: int, length: int) -> str:
    return text[max(0, at - 60) : at + length + 60]


def ledger_rows(path: str) -> list[str]:
    """Every column of every row of every table of the SQLite file, as text: text columns
    as they are, blobs decoded (replacing what is not UTF-8) and in hex too."""
    out: list[str] = []
    with contextlib.closing(sqlite3.connect(path)) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert tables, f"{path} has no tables"
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - names from the file
                out.append(f"{table}: " + " | ".join(_column(value) for value in row))
    return out


def _column(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace") + " " + value.hex()
    return str(value)


async def raw_exchange(host: str, port: int, head: bytes) -> str:
    """Send ``head`` as it is on a new connection; everything answered until it closes."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head)
        await writer.drain()
        async with asyncio.timeout(10):
            answer = await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return answer.decode("latin-1")


def malformed_heads(host: str, secret: str, api_key: str) -> Iterable[tuple[str, bytes]]:
    """Request heads aiohttp cannot parse, each carrying a credential: an obs-folded
    Authorization, a header over the size limit, a request line over it, a control
    character inside a header."""
    path = "/v1/namespaces/inline-pat/runs"

    def head(*lines: str) -> bytes:
        return ("\r\n".join((f"GET {path} HTTP/1.1", f"Host: {host}", *lines)) + "\r\n\r\n").encode(
            "latin-1"
        )

    yield "obs-fold", head("Authorization: Bearer", f" {api_key}", "X-Extra: 1")
    yield "long header", head(f"Authorization: Bearer {api_key}", f"X-Pad: {secret}{'a' * 9000}")
    long_line = f"GET {path}?token={secret}{'a' * 9000} HTTP/1.1\r\nHost: {host}\r\n\r\n"
    yield "long request line", long_line.encode("latin-1")
    yield "control character", head(f"Authorization: Bearer {api_key}", f"X-Bad: {secret}\x01x")
