"""`lakegate tenants check | list` against a real gateway: JSON, the list, and exit codes that
match the other client commands."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from gateway.cli.main import main
from gateway.doctor.render import format_tenants
from tests.doctor.test_routes import API_KEY_CALLERS
from tests.fixtures.gateway import StackFactory


async def _cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_check_json_is_the_report(
    gateway_stack_factory: StackFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    """--json prints the gateway's report as JSON, and the exit code still says healthy."""
    stack = await gateway_stack_factory()
    capfd.readouterr()
    code = await _cli("tenants", "check", "team-01", "--url", stack.url, "--json")
    report = json.loads(capfd.readouterr().out)
    assert code == 0
    assert report["namespace"] == "team-01"
    assert [s["name"] for s in report["steps"]] == [
        "policy", "identity", "source", "token-request", "token", "jobs-api", "git-credentials",
        "quotas", "webhook",
    ]  # fmt: skip


async def test_check_exits_1_when_a_step_fails(
    gateway_stack_factory: StackFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    """An unconfigured namespace: the identity rule fails, the command exits 1."""
    stack = await gateway_stack_factory()
    capfd.readouterr()
    code = await _cli("tenants", "check", "team-99", "--url", stack.url)
    out = capfd.readouterr().out
    assert code == 1
    assert "[FAIL] identity rule" in out
    assert "1 step(s) failed; the first: identity rule" in out


async def test_list_prints_each_namespace(
    gateway_stack_factory: StackFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    """`tenants list` prints one line a namespace, as format_tenants renders the answer."""
    stack = await gateway_stack_factory(namespaces=2)
    capfd.readouterr()
    assert await _cli("tenants", "list", "--url", stack.url) == 0
    out = capfd.readouterr().out
    listed = await stack.client().namespaces()
    assert out == format_tenants(listed) + "\n"
    assert out.splitlines()[0].split()[:3] == ["team-00", "ok", "pat"]


async def test_no_gateway_is_exit_3_as_for_other_commands(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Nothing listening: the error and the hint on stderr, exit 3 (no answer)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    code = await _cli("tenants", "check", "team-a", "--url", url, "--retries", "0")
    assert code == 3
    assert "is `lakegate serve` or `lakegate demo` running" in capfd.readouterr().err


def test_check_without_a_namespace_is_a_usage_error() -> None:
    """`tenants check` needs NAMESPACE: argparse refuses it with exit 2."""
    with pytest.raises(SystemExit) as info:
        main(["tenants", "check"])
    assert info.value.code == 2


async def test_a_refused_caller_is_exit_2(
    gateway_stack_factory: StackFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    """Without a credential the gateway answers 401: the problem on stderr, exit 2."""
    stack = await gateway_stack_factory(gateway={"callers": API_KEY_CALLERS})
    code = await _cli("tenants", "check", "team-01", "--url", stack.url)
    assert code == 2
    assert "hint: set LAKEGATE_TOKEN or pass --token-file" in capfd.readouterr().err
