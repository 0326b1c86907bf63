"""``lakegate webhooks dead | redeliver`` against a real gateway on loopback."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from gateway.cli.main import build_parser
from gateway.store.sqlite import SqliteStore
from tests.webhooks.conftest import ApiClient as Client
from tests.webhooks.conftest import dead_event


def _invoke(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


async def _cli(client: Client, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    url = str(client.make_url("")).rstrip("/")
    code = await asyncio.to_thread(_invoke, [*argv, "--url", url, "-n", "team-a"])
    # The gateway's own log lines share stdout in tests; the command's output is the rest.
    lines = capsys.readouterr().out.splitlines()
    return code, "\n".join(line for line in lines if not re.match(r"\d{4}-\d\d-\d\d ", line))


async def test_dead_lists_and_redeliver_sends_again(
    client: Client,
    store: SqliteStore,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The CLI lists dead events as JSON and redelivers one, then all."""
    first, second = await dead_event(store), await dead_event(store)
    code, out = await _cli(client, capsys, "webhooks", "dead", "-o", "json")
    assert code == 0
    assert [e["id"] for e in json.loads(out)["events"]] == [second, first]
    code, out = await _cli(client, capsys, "webhooks", "redeliver", str(first))
    assert (code, out.strip()) == (0, f"redelivering 1 event(s): {first}")
    code, out = await _cli(client, capsys, "webhooks", "redeliver", "--all", "-o", "json")
    assert (code, json.loads(out)) == (0, {"redelivered": [second]})


async def test_redeliver_needs_ids_or_all(
    client: Client,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Neither ids nor --all is a usage error (exit 2), nothing is sent."""
    code, _ = await _cli(client, capsys, "webhooks", "redeliver")
    assert code == 2
