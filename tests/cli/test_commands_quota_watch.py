"""``lakegate quota --watch``: the view again every interval, live or as a history, until Ctrl-C."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sys
from typing import Any

from gateway.cli.quota import QuotaDisplay, format_quota
from tests.cli.fake_gateway import FakeGateway
from tests.cli.test_commands_interrupt import PROGRAM


def view(queued: int, *, queue_seconds: float = 1.0) -> dict[str, Any]:
    return {
        "limits": {"max_active_runs": 2, "max_queued_runs": 5, "run_hours_per_day": 3.0},
        "usage": {
            "active": 2,
            "queued": queued,
            "run_hours": {"used": 1.5, "budget": 3.0, "retry_after_seconds": 0},
        },
        "queue": [
            {"id": 10 + i, "position": i + 1, "queued_seconds": queue_seconds}
            for i in range(queued)
        ],
    }


async def test_watch_prints_each_change_once_and_ctrl_c_ends_it_cleanly(
    gateway: FakeGateway,
) -> None:
    """Off a terminal each changed view is printed once however often it is asked; SIGINT
    ends the watch with exit 0 and no traceback."""
    gateway.quota_views = [view(2), view(2, queue_seconds=2.0), view(1), view(1), view(0)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEGATE_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PROGRAM,
        "quota", "-n", "team-a", "--url", gateway.url, "--watch", "--poll-interval", "0.05",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    seen = b""
    async with asyncio.timeout(10):
        while b"queued     0 / 5" not in (line := await process.stdout.readline()):
            assert line, "the watch ended by itself"
            seen += line
        for _ in range(200):  # it keeps asking while nothing changes
            if len([r for r in gateway.requests if r.path.endswith("/quota")]) >= 7:
                break
            await asyncio.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = await process.communicate()

    assert process.returncode == 0
    assert b"Traceback" not in err
    assert b"interrupted" not in err
    shown = (seen + line + out).decode()
    # Five answers and more, three different views: each printed once, in order.
    assert shown.count("namespace team-a") == 3
    assert shown.index("queued     2 / 5") < shown.index("queued     1 / 5")


def test_watch_off_a_terminal_shows_views_as_a_history() -> None:
    """The first view and each change print a block; an age moving alone prints nothing."""
    stream = io.StringIO()
    display = QuotaDisplay(stream, live=False)
    for shown in (view(2), view(2, queue_seconds=5.0), view(1)):
        display.update(shown)
    text = stream.getvalue()
    assert text.count("namespace") == 2
    assert "queued     2 / 5" in text
    assert "queued     1 / 5" in text


def test_watch_on_a_terminal_redraws_the_block_in_place() -> None:
    """Live: each view moves the cursor back over the last one and clears before drawing."""
    stream = io.StringIO()
    display = QuotaDisplay(stream, live=True)
    display.update(view(2))
    first = stream.getvalue()
    display.update(view(1))
    second = stream.getvalue()[len(first) :]
    assert first.startswith("\x1b[J")
    assert second.startswith(f"\x1b[{first.count(chr(10))}F\x1b[J")
    assert "queued     1 / 5" in second


def test_the_view_shows_run_hours_against_the_budget() -> None:
    """A namespace with a budget shows its rolling day's run-hours beside it."""
    assert "run-hours  1.5 in 24 h / 3" in format_quota(view(0))
