"""A fake gateway on a loopback port, and a way to run a client command against it."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.cli.commands import add_client_commands
from tests.cli.fake_gateway import FakeGateway

SPEC: dict[str, Any] = {
    "run_name": "nightly",
    "tasks": [{"task_key": "main", "notebook_task": {"notebook_path": "/Jobs/nightly"}}],
}


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


RunCli = Callable[..., Awaitable[Result]]


def parser() -> argparse.ArgumentParser:
    """The client commands as ``lakegate`` registers them."""
    root = argparse.ArgumentParser(prog="lakegate")
    add_client_commands(root.add_subparsers(dest="command", required=True))
    return root


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own LAKEGATE_* variables must not leak into the tests."""
    for name in ("LAKEGATE_URL", "LAKEGATE_TOKEN", "LAKEGATE_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    fake = FakeGateway()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(SPEC))
    return path


@pytest.fixture
def cli(gateway: FakeGateway, capsys: pytest.CaptureFixture[str]) -> RunCli:
    """Run ``lakegate <argv>`` against the fake; the handler runs its own loop in a thread."""

    def invoke(argv: list[str]) -> int:
        # Like the real command, the parser is built and the handler run outside any loop.
        args = parser().parse_args(argv)
        code: int = args.handler(args)
        return code

    async def run(*argv: str, url: str | None = None) -> Result:
        capsys.readouterr()
        code = await asyncio.to_thread(invoke, [*argv, "--url", url or gateway.url])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
