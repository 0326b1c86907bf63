"""Fixtures of the identity tests: a scripted server, a client session, Kubernetes, issuers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from gateway.identity.cache import TokenCache
from tests.databricks.scripted import server  # noqa: F401 (a fixture)
from tests.identity.fakes import FakeKube
from tests.support.http import session_fixture
from tests.support.jwt_issuer import Issuer

session = session_fixture()


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


@pytest.fixture
async def cache() -> AsyncIterator[TokenCache]:
    made = TokenCache()
    yield made
    await made.aclose()


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
