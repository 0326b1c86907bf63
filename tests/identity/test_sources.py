"""Where a fetch's parts come from: values given or read from a Secret, token files, minted
ServiceAccount tokens; all read at fetch time, never when built."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.errors import CredentialUnavailable
from gateway.identity import sources
from gateway.identity.cache import TokenCache
from tests.identity.fakes import FakeKube, Minter
from tests.support.jwt_issuer import Issuer

NS = "team-a"

# --- values given, or read from a Secret ----------------------------------------------------


async def test_values_given_up_front_read_no_secret(kube: FakeKube) -> None:
    """Values all given (settings, environment) are served as they are, with no Secret read."""
    values = sources.values(
        kube.read_secret, NS, "creds", {"client_id": "sp-1", "client_secret": "s"}
    )
    assert await values() == {"client_id": "sp-1", "client_secret": "s"}
    assert kube.reads == []


async def test_values_not_given_are_read_from_the_secret_at_each_fetch(
    kube: FakeKube,
) -> None:
    """A value given as None is read from the Secret on every call, so a rotation is seen."""
    kube.put(NS, "creds", client_secret="old\n")
    values = sources.values(
        kube.read_secret, NS, "creds", {"client_id": "sp-1", "client_secret": None}
    )
    assert await values() == {"client_id": "sp-1", "client_secret": "old"}
    kube.put(NS, "creds", client_secret="new")
    assert await values() == {"client_id": "sp-1", "client_secret": "new"}
    assert len(kube.reads) == 2


async def test_values_from_one_secret_cost_one_read(kube: FakeKube) -> None:
    """Several values of one Secret are read together, in one read per fetch."""
    kube.put(NS, "creds", client_id="sp-1", client_secret="s")
    values = sources.values(
        kube.read_secret, NS, "creds", {"client_id": None, "client_secret": None}
    )
    assert await values() == {"client_id": "sp-1", "client_secret": "s"}
    assert len(kube.reads) == 1


def test_values_neither_given_nor_in_a_secret_are_a_programming_error(
    kube: FakeKube,
) -> None:
    """A value with nowhere to come from is refused when built (kinds check it first)."""
    with pytest.raises(ValueError, match="token"):
        sources.values(kube.read_secret, NS, None, {"token": None})


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"other": "x"}, "has no key 'token'"),
        ({"token": " \n"}, "has an empty key 'token'"),
    ],
)
async def test_a_secret_without_its_key_is_unavailable(
    kube: FakeKube, values: dict[str, str], problem: str
) -> None:
    """The error names the namespace, the Secret and the key."""
    kube.put(NS, "databricks-token", **values)
    with pytest.raises(CredentialUnavailable, match=problem) as raised:
        await sources.secret_values(kube.read_secret, NS, "databricks-token", ("token",))
    assert "secret 'databricks-token' in namespace 'team-a'" in raised.value.message
    assert (raised.value.namespace, raised.value.source) == (NS, "secret/databricks-token")


async def test_a_secret_value_that_is_not_text_is_unavailable() -> None:
    """Bytes that are not UTF-8 are refused rather than sent as a garbled token."""

    async def read(_namespace: str, _name: str) -> dict[str, bytes]:
        return {"token": b"\xff\xfe"}

    with pytest.raises(CredentialUnavailable, match="non-UTF-8 key 'token'"):
        await sources.secret_values(read, NS, "databricks-token", ("token",))


async def test_the_first_missing_key_is_named(kube: FakeKube) -> None:
    """Keys are checked in the order asked: an OAuth Secret lacking client_id says so."""
    kube.put(NS, "databricks-oauth", client_secret="dose")
    with pytest.raises(CredentialUnavailable, match="has no key 'client_id'"):
        await sources.secret_values(
            kube.read_secret, NS, "databricks-oauth", ("client_id", "client_secret")
        )


# --- token files ----------------------------------------------------------------------------


async def test_a_token_file_is_read_again_after_the_kubelet_replaces_it(tmp_path: Path) -> None:
    """Each call reads the file, so a rotated token is seen at once; whitespace is stripped."""
    issuer = Issuer()
    one, two = issuer.sign("one"), issuer.sign("two")
    path = tmp_path / "token"
    path.write_text(one + "\n")
    read = sources.token_file(path)
    assert await read() == one
    replacement = tmp_path / "token.new"
    replacement.write_text(two)
    os.replace(replacement, path)
    assert await read() == two


@pytest.mark.parametrize(("content", "problem"), [(None, "does not exist"), ("  \n", "is empty")])
async def test_a_missing_or_empty_token_file_is_unavailable(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    """The error names the file and what is wrong with it."""
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    with pytest.raises(CredentialUnavailable, match=problem) as raised:
        await sources.token_file(path, namespace=NS)()
    assert str(path) in raised.value.message
    assert raised.value.namespace == NS


# --- minted ServiceAccount tokens -----------------------------------------------------------


async def test_a_minted_token_is_kept_for_the_next_exchange(issuer: Issuer) -> None:
    """The first subject token costs a TokenRequest; the next ones come from the cache."""
    cache, mint = TokenCache(), Minter(issuer)
    subject = sources.minted_service_account_token(cache, mint, NS, "etl", "aud")
    first = await subject()
    assert await subject() == first
    assert mint.calls == [(NS, "etl", ["aud"], 600)]
    await cache.aclose()


def test_a_token_request_shorter_than_kubernetes_allows_is_refused(issuer: Issuer) -> None:
    """The API server mints for at least 600 s; asking for less fails when built."""
    with pytest.raises(ValueError, match="600"):
        sources.minted_service_account_token(TokenCache(), Minter(issuer), "ns", "sa", "aud", 60)


# --- malformed credentials are refused when read ---------------------------------------------

MALFORMED = [
    "dapi-abc\nX-Injected: 1",
    "dapi-abc\r\nHost: evil",
    "dapi abc",
    "dapi\tabc",
    "dapi\x00abc",
    "dapi\x7fabc",
    "dapi\u200babc",
    "dapi\u00e9abc",
]


@pytest.mark.parametrize("value", MALFORMED)
async def test_a_malformed_secret_value_is_refused_naming_secret_and_key(
    kube: FakeKube, value: str
) -> None:
    """A Secret value with a control character, inner space or non-printable byte is refused,
    naming the Secret and the key, never the value."""
    kube.put(NS, "databricks-token", token=value)
    with pytest.raises(CredentialUnavailable) as caught:
        await sources.secret_values(kube.read_secret, NS, "databricks-token", ("token",))
    message = caught.value.message
    assert "'databricks-token'" in message
    assert "'token'" in message
    assert NS in message
    assert "abc" not in message
    assert caught.value.source == "secret/databricks-token"


@pytest.mark.parametrize("value", MALFORMED)
def test_a_malformed_inline_value_is_refused_when_built(kube: FakeKube, value: str) -> None:
    """A value given by the settings or environment with such characters is refused at once."""
    with pytest.raises(CredentialUnavailable) as caught:
        sources.values(kube.read_secret, NS, None, {"token": value})
    assert "token" in caught.value.message
    assert "abc" not in caught.value.message


@pytest.mark.parametrize("value", MALFORMED)
async def test_a_malformed_token_file_is_unavailable(tmp_path: Path, value: str) -> None:
    """A token file whose content has such characters is refused, naming the file."""
    path = tmp_path / "token"
    path.write_text(value, encoding="utf-8")
    with pytest.raises(CredentialUnavailable) as caught:
        await sources.token_file(path, namespace=NS)()
    assert str(path) in caught.value.message
    assert "abc" not in caught.value.message


@pytest.mark.parametrize("value", ["dapi-abc\n", "  dapi-abc  ", "eyJ.a-b_c.d~e+f/g="])
async def test_a_well_formed_value_with_outer_whitespace_is_served_stripped(
    kube: FakeKube, value: str
) -> None:
    """Outer whitespace (a trailing newline from --from-file) is not a malformed value."""
    kube.put(NS, "databricks-token", token=value)
    read = await sources.secret_values(kube.read_secret, NS, "databricks-token", ("token",))
    assert read == (value.strip(),)
