"""Fixtures of the identity tests: a scripted server, a client session, Secrets, JWT issuers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import pytest
from aiohttp.test_utils import TestServer

from gateway.errors import CredentialUnavailable
from tests.databricks.scripted import server  # noqa: F401 (a fixture)
from tests.support.http import session_fixture
from tests.support.jwt_issuer import Issuer

session = session_fixture()


class FakeSecrets:
    """Secrets by namespace and name, read as the kube edge's ``read_secret`` reads them."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], dict[str, bytes]] = {}
        self.reads = 0

    def put(self, namespace: str, name: str, **values: str) -> None:
        self.data[(namespace, name)] = {k: v.encode() for k, v in values.items()}

    async def read(self, namespace: str, name: str) -> Mapping[str, bytes]:
        self.reads += 1
        try:
            return dict(self.data[(namespace, name)])
        except KeyError:
            raise CredentialUnavailable(
                f"secret '{name}' not found", namespace=namespace, source=f"secret/{name}"
            ) from None


@pytest.fixture
def secrets() -> FakeSecrets:
    return FakeSecrets()


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
async def served_issuer() -> AsyncIterator[Issuer]:
    """An issuer on a loopback port serving OIDC discovery and its JWKS, as a cluster does."""
    issuer = Issuer()
    served = TestServer(issuer.app())
    await served.start_server()
    issuer.iss = str(served.make_url("")).rstrip("/")
    yield issuer
    await served.close()
