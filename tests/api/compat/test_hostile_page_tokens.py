"""Page tokens a client forged to break the decoder: refused as a 400, never a 500 (issue 9)."""

from __future__ import annotations

import base64

import pytest

from gateway.api.compat.errors import CompatError
from gateway.api.compat.requests import PageToken


def _encoded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 3000,
        b'{"c":' * 1200,
        b'{"c":null,"s":' + b"9" * 5000 + b"}",
        b"\xff\xfe",
    ],
    ids=["deep-array", "deep-object", "digits-past-the-int-limit", "not-utf8"],
)
def test_tokens_nesting_too_deep_or_too_long_to_decode_are_invalid(raw: bytes) -> None:
    """Nesting past json's recursion limit (once a RecursionError: 500), numbers with more
    digits than int() takes, bytes that are not text: all an invalid page token."""
    with pytest.raises(CompatError, match="Invalid page token"):
        PageToken.decode(_encoded(raw))
