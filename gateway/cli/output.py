"""What the client commands show: a run, a list of runs, and the live state of a run.

Pure formatting over the API's run JSON, apart from ``StateDisplay`` writing to the stream
it is given; the clock and the terminal width are parameters so tests need neither.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TextIO

from gateway.cli.client import Run, is_terminal

Clock = Callable[[], datetime]

_CLEAR_LINE = "\r\x1b[2K"
_ELLIPSIS = "\u2026"
# The fields people look at first; any other field the API adds follows them.
_RUN_FIELDS = (
    "id",
    "namespace",
    "state",
    "state_message",
    "databricks_run_id",
    "run_page_url",
    "labels",
    "callback_url",
    "cancel_requested",
    "created_at",
    "updated_at",
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def humanize_seconds(seconds: float) -> str:
    """A compact duration: 42s, 3m07s, 2h05m, 4d03h."""
    whole = int(max(0.0, seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def elapsed(run: Run, now: datetime) -> float | None:
    """Seconds the run has existed; a finished run stops counting when it ended."""
    start = parse_time(run.get("created_at"))
    if start is None:
        return None
    end = parse_time(run.get("updated_at")) if is_terminal(run["state"]) else None
    return max(0.0, ((end or now) - start).total_seconds())


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns aligned on their widest cell; the last column is not padded."""
    lines = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(line, widths, strict=False)), line[-1]])
        for line in lines
    )


def _cell(value: object) -> str:
    if value is None or value == "" or value == {}:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items()))
    return str(value)


def format_runs(runs: Iterable[Run], *, now: datetime | None = None) -> str:
    moment = now or utc_now()
    rows = []
    for run in runs:
        started = parse_time(run.get("created_at"))
        age = humanize_seconds((moment - started).total_seconds()) if started else "-"
        rows.append(
            [
                _cell(run["id"]),
                run["state"],
                _cell(run.get("databricks_run_id")),
                age,
                _cell(run.get("labels")),
            ]
        )
    return table(["ID", "STATE", "DATABRICKS RUN", "AGE", "LABELS"], rows)


def format_run(run: Run, *, history: bool = False, now: datetime | None = None) -> str:
    """One run as aligned ``field  value`` lines, then its history as a table if asked."""
    moment = now or utc_now()
    present = {key: value for key, value in run.items() if key != "history"}
    keys = [k for k in _RUN_FIELDS if k in present] + sorted(set(present) - set(_RUN_FIELDS))
    rows = []
    for key in keys:
        text = _cell(present[key])
        started = parse_time(present[key]) if key == "created_at" else None
        if started is not None:
            text += f" ({humanize_seconds((moment - started).total_seconds())} ago)"
        rows.append([key, text])
    out = table(["FIELD", "VALUE"], rows).split("\n", 1)[1]
    entries = run.get("history") or []
    if history and entries:
        steps = [
            [_cell(e.get("at")), _cell(e.get("from")), _cell(e.get("to")), _cell(e.get("message"))]
            for e in entries
        ]
        out += "\n\n" + table(["AT", "FROM", "TO", "MESSAGE"], steps)
    return out


def fit(parts: Sequence[str], width: int, *, ellipsis: str = _ELLIPSIS) -> str:
    """``parts`` joined by two spaces in at most ``width`` columns.

    A part that does not fit whole is left out and the line ends with the ellipsis: a URL cut
    short still looks like a URL, and a terminal would open the wrong page.
    """
    line = "  ".join(parts)
    if len(line) <= width:
        return line
    shown = ""
    for part in parts:
        longer = f"{shown}  {part}" if shown else part
        if len(longer) + 1 + len(ellipsis) > width:
            break
        shown = longer
    if not shown:
        return parts[0][: max(width - len(ellipsis), 0)] + ellipsis
    return f"{shown} {ellipsis}"


def _ellipsis_for(stream: TextIO) -> str:
    # A terminal in the C locale cannot print the one-character ellipsis.
    try:
        _ELLIPSIS.encode(getattr(stream, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return "..."
    return _ELLIPSIS


class StateDisplay:
    """Shows a run's state while someone waits for it.

    ``live`` (a terminal): one line redrawn in place, with the elapsed time moving, cut to the
    terminal's width with an ellipsis; a run page URL too long for it is printed whole on a
    line of its own once. Otherwise (a log file, CI output): one line each time the state or
    the Databricks run changes, so the log reads as a history instead of a mess of carriage
    returns.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        live: bool,
        clock: Clock = utc_now,
        width: Callable[[], int] = lambda: shutil.get_terminal_size().columns,
    ) -> None:
        self.live = live
        self._stream = stream
        self._clock = clock
        self._width = width
        self._run: Run | None = None
        self._shown: tuple[object, ...] | None = None
        self._drawn = False
        self._ellipsis = _ellipsis_for(stream)
        self._url_noted: object = None

    def update(self, run: Run) -> None:
        self._run = run
        if self.live:
            self._draw()
            return
        key = (run["state"], run.get("databricks_run_id"), run.get("run_page_url"))
        if key != self._shown:
            self._shown = key
            self._stream.write(self.line() + "\n")
            self._stream.flush()

    def redraw(self) -> None:
        if self.live and self._run is not None:
            self._draw()

    def note(self, text: str) -> None:
        """Print a line of its own (a retry, a warning) without breaking the live line."""
        if self._drawn:
            self._stream.write(_CLEAR_LINE)
        self._stream.write(text + "\n")
        if self._drawn:
            self._draw()
        self._stream.flush()

    def close(self) -> None:
        """End the in-place line so what follows starts on a fresh one."""
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False

    def line(self) -> str:
        return "  ".join(self._parts())

    def _parts(self) -> list[str]:
        run = self._run
        if run is None:
            return []
        parts = [f"run {run['id']}", run["state"]]
        seconds = elapsed(run, self._clock())
        if seconds is not None:
            parts.append(humanize_seconds(seconds))
        if run.get("databricks_run_id") is not None:
            parts.append(f"databricks run {run.get('databricks_run_id')}")
        if run.get("run_page_url"):
            parts.append(str(run.get("run_page_url")))
        return parts

    def _draw(self) -> None:
        # A line wider than the terminal wraps, and \r then redraws only its last row.
        width = max(self._width() - 1, 20)
        parts = self._parts()
        text = fit(parts, width, ellipsis=self._ellipsis)
        url = self._run.get("run_page_url") if self._run is not None else None
        if url and str(url) not in text and url != self._url_noted:
            self._url_noted = url
            # Printed whole once, where a terminal can open it.
            self._stream.write((_CLEAR_LINE if self._drawn else "") + f"run page: {url}\n")
        self._stream.write(_CLEAR_LINE + text)
        self._stream.flush()
        self._drawn = True
