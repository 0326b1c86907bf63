"""The server helpers: EmulatorServer on port 0, and serve() running until cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import aiohttp
import pytest

from gateway.emulator.databricks import EmulatorConfig, EmulatorServer, serve


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_an_emulator_server_listens_on_a_free_port() -> None:
    """EmulatorServer() takes a free loopback port and exposes its URL."""
    async with EmulatorServer() as server, aiohttp.ClientSession() as http:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        async with http.get(f"{server.url}/emulator/stats") as resp:
            assert resp.status == 200


def test_an_unstarted_server_has_no_port() -> None:
    """Asking for the port before start is an error, not port 0."""
    with pytest.raises(RuntimeError, match="not started"):
        _ = EmulatorServer().port


async def test_serve_runs_until_cancelled() -> None:
    """serve() answers on its port until its task is cancelled, then lets the port go."""
    port = free_port()
    task = asyncio.create_task(serve(EmulatorConfig(), host="127.0.0.1", port=port))
    url = f"http://127.0.0.1:{port}/emulator/clock"
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            with contextlib.suppress(aiohttp.ClientConnectionError):
                async with http.get(url) as resp:
                    assert resp.status == 200
                    break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("serve() never answered")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(aiohttp.ClientConnectionError):
            async with http.get(url):
                pass
