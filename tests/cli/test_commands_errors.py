"""How the client commands report a refusing, failing or absent gateway, and carry the token."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.cli.conftest import RunCli
from tests.cli.fake_gateway import FakeGateway

TOKEN = "Zk9xTUtQbmFhcmR2YXJrLXRva2Vu"


async def test_problem_is_shown_with_exit_2(cli: RunCli, gateway: FakeGateway) -> None:
    """A 4xx problem+json answer prints its title, detail and request id, and exits 2."""
    result = await cli("get", "-n", "team-a", "404")

    assert result.code == 2
    assert result.out == ""
    assert "error: Run not found (404)" in result.err
    assert "no run 404 in namespace team-a" in result.err
    assert "request id: req-1" in result.err


async def test_unreachable_gateway_exits_3_with_a_hint(cli: RunCli) -> None:
    """Nothing listening at --url exits 3 and asks whether lakegate is running there."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"  # closed again before the call

    result = await cli("runs", "-n", "team-a", "--retries", "0", url=url)

    assert result.code == 3
    assert f"is `lakegate serve` or `lakegate demo` running at {url}?" in result.err


async def test_missing_namespace_is_a_usage_error(cli: RunCli, gateway: FakeGateway) -> None:
    """Without --namespace or LAKEGATE_NAMESPACE a command exits 2 and sends nothing."""
    result = await cli("runs")

    assert result.code == 2
    assert "pass --namespace or set LAKEGATE_NAMESPACE" in result.err
    assert gateway.requests == []


async def test_namespace_comes_from_the_environment(
    cli: RunCli, gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LAKEGATE_NAMESPACE stands in for --namespace."""
    monkeypatch.setenv("LAKEGATE_NAMESPACE", "team-b")

    await cli("runs")

    assert gateway.requests[0].path == "/v1/namespaces/team-b/runs"


async def test_token_from_the_environment_is_sent_and_never_printed(
    cli: RunCli, gateway: FakeGateway, spec_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LAKEGATE_TOKEN goes out as a bearer token and appears in no output, even on errors."""
    monkeypatch.setenv("LAKEGATE_TOKEN", TOKEN)

    submitted = await cli(
        "submit", "-n", "team-a", "-f", str(spec_file), "--wait", "--poll-interval", "0.01"
    )
    refused = await cli("get", "-n", "team-a", "404")

    assert {r.headers.get("Authorization") for r in gateway.requests} == {f"Bearer {TOKEN}"}
    for output in (submitted.out, submitted.err, refused.out, refused.err):
        assert TOKEN not in output


async def test_token_file_wins_over_the_environment(
    cli: RunCli, gateway: FakeGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--token-file is read (trailing newline dropped) in preference to LAKEGATE_TOKEN."""
    monkeypatch.setenv("LAKEGATE_TOKEN", "from-the-environment")
    token_file = tmp_path / "token"
    token_file.write_text("from-the-file\n")

    await cli("runs", "-n", "team-a", "--token-file", str(token_file))

    assert gateway.requests[0].headers["Authorization"] == "Bearer from-the-file"


async def test_no_token_sends_no_authorization(cli: RunCli, gateway: FakeGateway) -> None:
    """Without a token the requests carry no Authorization header at all."""
    await cli("runs", "-n", "team-a")

    assert "Authorization" not in gateway.requests[0].headers
