"""TLS for the main listener and the metrics listener beside it (issue 9), served in-process
the way ``lakegate serve`` serves them, and refused at start-up when the files do not load."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import trustme
import yaml

from gateway.api.ops import metrics_app
from gateway.app import Overrides, create_app
from gateway.appkeys import METRICS
from gateway.cli.main import main
from gateway.errors import ConfigError
from gateway.serving import GatewayRunner, Listener, start_site, tls_context
from gateway.settings import Settings

API_KEY = "lgk_" + "metrics-reader-0123456789abcdef"


@dataclass(frozen=True)
class Pki:
    ca: trustme.CA
    cert_file: Path
    key_file: Path

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA of the test's own and a certificate for 127.0.0.1 it signed, as PEM files."""
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = folder / "tls.crt", folder / "tls.key"
    for blob in issued.cert_chain_pems:
        blob.write_to_path(str(cert_file), append=True)
    issued.private_key_pem.write_to_path(str(key_file))
    return Pki(ca, cert_file, key_file)


def settings_for(tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {
            "store": {"sqlite_path": str(tmp_path / "ledger.db")},
            "workspaces": {"prod": {"host": "https://prod.cloud.databricks.com"}},
            "callers": {
                "methods": ["api_key"],
                "api_keys": [
                    {
                        "name": "ops",
                        "sha256": hashlib.sha256(API_KEY.encode()).hexdigest(),
                        "namespaces": ["team-a"],
                    }
                ],
            },
        }
    )


@dataclass(frozen=True)
class Served:
    main: str
    metrics: str


@pytest.fixture
async def served(tmp_path: Path, pki: Pki) -> AsyncIterator[Served]:
    """The gateway over TLS on one port and its metrics listener on another."""
    app = create_app(settings_for(tmp_path), Overrides(run_poller=False))
    # `lakegate serve` loads the files before its loop runs; here a thread stands in for that.
    context = await asyncio.to_thread(tls_context, str(pki.cert_file), str(pki.key_file))
    runners = [GatewayRunner(app), GatewayRunner(metrics_app(app[METRICS]))]
    for runner in runners:
        await runner.setup()
    try:
        main_port = await start_site(runners[0], Listener(app, "127.0.0.1", 0, context))
        metrics_port = await start_site(runners[1], Listener(app, "127.0.0.1", 0))
        yield Served(f"https://127.0.0.1:{main_port}", f"http://127.0.0.1:{metrics_port}")
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


async def test_the_main_listener_speaks_tls_with_the_configured_certificate(
    served: Served, pki: Pki
) -> None:
    """A client trusting the CA gets its answer; one that does not, or plain HTTP, gets none."""
    trusting = aiohttp.TCPConnector(ssl=pki.client_context())
    async with (
        aiohttp.ClientSession(connector=trusting) as http,
        http.get(f"{served.main}/healthz") as resp,
    ):
        assert resp.status == 200
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await http.get(f"{served.main}/healthz")
        plain = served.main.replace("https://", "http://")
        with pytest.raises(aiohttp.ClientError):
            await http.get(f"{plain}/healthz")


async def test_metrics_need_a_caller_on_the_main_listener_and_none_on_their_own(
    served: Served, pki: Pki
) -> None:
    """Anonymous: 401 on the main listener, never a namespace; with a credential, the series.
    The metrics listener serves /metrics alone, to whoever reaches it."""
    trusting = aiohttp.TCPConnector(ssl=pki.client_context())
    async with aiohttp.ClientSession(connector=trusting) as http:
        async with http.get(f"{served.main}/v1/namespaces/team-a/runs") as resp:
            assert resp.status == 401
        async with http.get(f"{served.main}/metrics") as resp:
            assert resp.status == 401
            assert resp.content_type == "application/problem+json"
            assert "lakegate_" not in await resp.text()
        async with http.get(f"{served.main}/metrics", headers={"X-API-Key": API_KEY}) as resp:
            assert resp.status == 200
            assert "lakegate_http_requests_total" in await resp.text()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{served.metrics}/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert 'route="/metrics",status="401"' in await resp.text()
        for path in ("/healthz", "/v1/namespaces/team-a/runs", "/openapi.json"):
            async with http.get(f"{served.metrics}{path}") as resp:
                assert resp.status == 404, path


def test_tls_needs_both_files_or_neither() -> None:
    with pytest.raises(ValueError, match="give both tls_cert_file and tls_key_file"):
        Settings.model_validate({"server": {"tls_cert_file": "/etc/tls/tls.crt"}})


def test_tls_files_that_do_not_load_are_a_configuration_error(tmp_path: Path, pki: Pki) -> None:
    """Missing files are named by setting; a key that is not the certificate's says so."""
    with pytest.raises(ConfigError) as missing:
        tls_context(str(tmp_path / "nope.crt"), str(pki.key_file))
    assert missing.value.problems == [
        f"server: tls_cert_file: {tmp_path / 'nope.crt'} does not exist or is not a file"
    ]
    other = trustme.CA().issue_cert("127.0.0.1")
    other_key = tmp_path / "other.key"
    other.private_key_pem.write_to_path(str(other_key))
    with pytest.raises(ConfigError, match=r"cannot load .* with .*other\.key"):
        tls_context(str(pki.cert_file), str(other_key))


def test_serve_refuses_to_start_when_the_tls_files_do_not_load(
    tmp_path: Path, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    """`lakegate serve` exits 2 before it listens, naming the setting and the file."""
    raw = settings_for(tmp_path).model_dump(mode="json", exclude_none=True)
    raw["server"] |= {"tls_cert_file": str(pki.cert_file), "tls_key_file": str(tmp_path / "k")}
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(raw))
    assert main(["serve", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "cannot start: the TLS files do not load" in err
    assert f"server: tls_key_file: {tmp_path / 'k'} does not exist" in err


def test_the_metrics_listener_is_a_listener_of_its_own() -> None:
    assert Settings.model_validate({"server": {"metrics_port": 9090}}).server.metrics_listener == (
        "127.0.0.1",
        9090,
    )
    with pytest.raises(ValueError, match="metrics_port must differ from port"):
        Settings.model_validate({"server": {"port": 8080, "metrics_port": 8080}})
    with pytest.raises(ValueError, match="metrics_host needs metrics_port"):
        Settings.model_validate({"server": {"metrics_host": "0.0.0.0"}})
