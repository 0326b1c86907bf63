"""Fixtures of the identity tests: a scripted server, a client session, Secrets, JWT issuers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.errors import CredentialUnavailable
from tests.databricks.scripted import ScriptedServer
from tests.identity.issuer import Issuer


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    scripted = ScriptedServer()
    await scripted.start()
    yield scripted
    await scripted.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


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


@pytest.fixture(scope="session")
def signing_key() -> rsa.RSAPrivateKey:
    """One RSA key for the whole run: generating it is the slowest step of these tests."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def issuer(signing_key: rsa.RSAPrivateKey) -> Issuer:
    return Issuer(signing_key)


@pytest.fixture
async def served_issuer(signing_key: rsa.RSAPrivateKey) -> AsyncIterator[Issuer]:
    """An issuer on a loopback port serving OIDC discovery and its JWKS, as a cluster does."""
    issuer = Issuer(signing_key)

    async def discovery(_request: web.Request) -> web.Response:
        return web.json_response({"issuer": issuer.iss, "jwks_uri": issuer.jwks_uri})

    async def keys(_request: web.Request) -> web.Response:
        return web.json_response(issuer.jwks())

    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", discovery)
    app.router.add_get("/openid/v1/jwks", keys)
    served = TestServer(app)
    await served.start_server()
    issuer.iss = str(served.make_url("")).rstrip("/")
    yield issuer
    await served.close()
