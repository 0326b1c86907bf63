"""A token file's places are tried in order at every read: a missing one falls through, a
broken one is refused (never skipped for the next)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import IdentityMisconfigured
from gateway.identity import sources

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
OLD_JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJvbGQifQ.c2ln"


async def test_a_missing_first_path_falls_through_to_the_next(tmp_path: Path) -> None:
    second = tmp_path / "aws-token"
    second.write_text(JWT + "\n")
    read = sources.token_file(tmp_path / "absent", namespace="ns", fallbacks=[str(second)])
    assert await read() == JWT


async def test_a_file_that_appears_later_is_used_from_the_next_read(tmp_path: Path) -> None:
    first, second = tmp_path / "explicit", tmp_path / "well-known"
    second.write_text(OLD_JWT)
    read = sources.token_file(first, namespace="ns", fallbacks=[str(second)])
    assert await read() == OLD_JWT
    first.write_text(JWT)
    assert await read() == JWT


async def test_when_none_exists_the_refusal_names_every_place(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    read = sources.token_file(a, namespace="ns", fallbacks=[str(b)])
    with pytest.raises(IdentityMisconfigured) as raised:
        await read()
    assert str(raised.value) == f"token file {a} does not exist (nor does {b})"
    assert raised.value.status == 422


async def test_an_empty_first_file_is_refused_not_skipped(tmp_path: Path) -> None:
    first, second = tmp_path / "empty", tmp_path / "good"
    first.write_text("\n")
    second.write_text(JWT)
    read = sources.token_file(first, namespace="ns", fallbacks=[str(second)])
    with pytest.raises(IdentityMisconfigured, match="is empty"):
        await read()
