"""Snapshot files of the CLI's text: compared exactly, after the run's own noise is normalised.

Ports, times, random client ids, Entra's trace ids and the stack's temporary directory change
from run to run; everything else must match the file byte for byte. Set
``LAKEGATE_UPDATE_SNAPSHOTS=1`` to write the files from this run instead (then read the diff
before committing it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

DIRECTORY = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("LAKEGATE_UPDATE_SNAPSHOTS") == "1"

_RULES = (
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:PORT"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"), "TIME"),
    # What Entra stamps on each error it answers (a quoted AADSTS message ends with them).
    (re.compile(r"(Trace ID|Correlation ID): [0-9a-f-]{36}"), r"\1: UUID"),
    (re.compile(r"Timestamp: \d{4}-\d\d-\d\d[\d :Z]*"), "Timestamp: TIME"),
    # Masked client ids of principals made with a random UUID.
    (re.compile(r"\b[0-9a-f]{4}\.\.\.[0-9a-f]{4}\b"), "xxxx...xxxx"),
)


def normalise(text: str, files: Path) -> str:
    text = text.replace(str(files), "FILES")
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


def check(name: str, text: str) -> None:
    path = DIRECTORY / f"{name}.txt"
    if UPDATE:
        path.write_text(text, "utf-8")
        return
    assert path.exists(), f"no snapshot {path}: run with LAKEGATE_UPDATE_SNAPSHOTS=1 to write it"
    assert text == path.read_text("utf-8"), (
        f"{path} differs; if the change is intended, run with LAKEGATE_UPDATE_SNAPSHOTS=1"
    )
