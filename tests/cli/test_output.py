"""What the client commands show, checked without a gateway or an event loop."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from gateway.cli.client import Run
from gateway.cli.output import StateDisplay, elapsed, fit, format_run, humanize_seconds, table

START = datetime(2030, 1, 1, tzinfo=UTC)


def _run(state: str, **extra: Any) -> Run:
    return cast(Run, {"id": 7, "state": state, "created_at": START.isoformat(), **extra})


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s"),
        (59.9, "59s"),
        (60, "1m00s"),
        (3599, "59m59s"),
        (3600, "1h00m"),
        (90000, "1d01h"),
        (-5, "0s"),
    ],
)
def test_humanize_seconds(seconds: float, shown: str) -> None:
    """Durations read as the largest two units, never negative."""
    assert humanize_seconds(seconds) == shown


def test_table_pads_every_column_but_the_last() -> None:
    """Cells line up under their header; the last column carries no trailing spaces."""
    assert table(["A", "LONG"], [["xyz", "1"], ["", "22"]]).splitlines() == [
        "A    LONG",
        "xyz  1",
        "     22",
    ]


def test_elapsed_of_a_finished_run_stops_when_it_ended() -> None:
    """A terminal run's elapsed time is created_at to updated_at, not to now."""
    run = _run("FAILED", updated_at=(START + timedelta(seconds=42)).isoformat())

    assert elapsed(run, START + timedelta(hours=5)) == 42


def test_format_run_shows_the_age_and_dashes_for_nothing() -> None:
    """created_at carries its age; absent values show as a dash."""
    text = format_run(_run("RUNNING", databricks_run_id=None), now=START + timedelta(minutes=3))

    assert "created_at         2030-01-01T00:00:00+00:00 (3m00s ago)" in text
    assert "databricks_run_id  -" in text


def test_live_display_redraws_one_line_in_place() -> None:
    """On a terminal each update clears the line and rewrites it; close ends the line."""
    stream = io.StringIO()
    display = StateDisplay(
        stream, live=True, clock=lambda: START + timedelta(seconds=5), width=lambda: 80
    )

    display.update(_run("PENDING"))
    display.update(_run("RUNNING", databricks_run_id=981, run_page_url="https://dbc.example/r/981"))
    display.close()

    assert stream.getvalue() == (
        "\r\x1b[2Krun 7  PENDING  5s"
        "\r\x1b[2Krun 7  RUNNING  5s  databricks run 981  https://dbc.example/r/981"
        "\n"
    )


def test_note_keeps_the_live_line_below_it() -> None:
    """A retry notice gets a line of its own and the live line is drawn again under it."""
    stream = io.StringIO()
    display = StateDisplay(stream, live=True, clock=lambda: START, width=lambda: 80)
    display.update(_run("RUNNING"))

    display.note("503 Unavailable; retrying in 1.0s")

    assert stream.getvalue() == (
        "\r\x1b[2Krun 7  RUNNING  0s"
        "\r\x1b[2K503 Unavailable; retrying in 1.0s\n"
        "\r\x1b[2Krun 7  RUNNING  0s"
    )


def test_live_display_never_wraps() -> None:
    """A line wider than the terminal is cut, since \\r only rewinds the last wrapped row."""
    stream = io.StringIO()
    display = StateDisplay(stream, live=True, clock=lambda: START, width=lambda: 30)

    display.update(_run("RUNNING", run_page_url="https://dbc.example/" + "x" * 80))

    live = stream.getvalue().rsplit("\r\x1b[2K", 1)[1]
    assert len(live) <= 29
    assert live == "run 7  RUNNING  0s \u2026"


def test_a_url_too_long_for_the_live_line_is_printed_whole_once() -> None:
    """The run page URL is never cut short: it gets a line of its own, once, and the live
    line ends with an ellipsis where it would have been."""
    url = "https://adb-1234567890123456.7.azuredatabricks.net/?o=1234567890123456#job/1/run/981"
    stream = io.StringIO()
    display = StateDisplay(stream, live=True, clock=lambda: START, width=lambda: 60)

    display.update(_run("PENDING"))
    display.update(_run("RUNNING", databricks_run_id=981, run_page_url=url))
    display.redraw()
    display.close()

    assert stream.getvalue() == (
        "\r\x1b[2Krun 7  PENDING  0s"
        f"\r\x1b[2Krun page: {url}\n"
        "\r\x1b[2Krun 7  RUNNING  0s  databricks run 981 \u2026"
        "\r\x1b[2Krun 7  RUNNING  0s  databricks run 981 \u2026"
        "\n"
    )


@pytest.mark.parametrize(
    ("width", "shown"),
    [
        (39, "run 7  RUNNING  https://dbc.example/r/1"),
        (38, "run 7  RUNNING \u2026"),
        (16, "run 7  RUNNING \u2026"),
        (15, "run 7 \u2026"),
        (6, "run 7\u2026"),
    ],
)
def test_fit_keeps_whole_parts_and_ends_a_cut_line_with_an_ellipsis(width: int, shown: str) -> None:
    """Parts are shown whole or not at all; a cut line ends with the ellipsis, within width."""
    line = fit(["run 7", "RUNNING", "https://dbc.example/r/1"], width)

    assert line == shown
    assert len(line) <= width


def test_a_terminal_that_cannot_print_the_ellipsis_gets_three_dots() -> None:
    """In the C locale (ASCII) the live line ends with '...' instead of failing to encode."""
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    display = StateDisplay(stream, live=True, clock=lambda: START, width=lambda: 30)

    display.update(_run("RUNNING", run_page_url="https://dbc.example/" + "x" * 80))

    assert raw.getvalue().decode("ascii").endswith("run 7  RUNNING  0s ...")


def test_plain_display_writes_a_line_only_when_something_changes() -> None:
    """Off a terminal, polls that find nothing new add no lines."""
    stream = io.StringIO()
    display = StateDisplay(stream, live=False, clock=lambda: START)

    for state in ("PENDING", "PENDING", "RUNNING", "RUNNING", "SUCCEEDED"):
        display.update(_run(state))
    display.close()

    assert [line.split()[2] for line in stream.getvalue().splitlines()] == [
        "PENDING",
        "RUNNING",
        "SUCCEEDED",
    ]
