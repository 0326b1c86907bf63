"""The fenced code blocks of the README and docs/, with the marker written before each.

A marker is an HTML comment on the line just before the fence (blank lines between allowed),
invisible once rendered: ``<!-- example: KIND -->`` for a configuration example that
tests/docs/test_examples.py loads as KIND, ``<!-- procedure: NAME -->`` for commands a test
runs (the quick start, the ledger backup).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
FENCE = re.compile(r"^\s*(`{3,})([\w+-]*)\s*$")
MARKER = re.compile(r"^<!--\s*(example|procedure):\s*([\w.+-]+)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    marker: tuple[str, str] | None  # ("example", kind) or ("procedure", name)

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def documents() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, in order."""
    lines = path.read_text("utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        end = next(
            (i for i in range(index + 1, len(lines)) if lines[i].strip() == opening.group(1)),
            len(lines),
        )
        found.append(
            Block(
                path,
                index + 1,
                opening.group(2).lower(),
                # A block inside a list item is indented with it.
                textwrap.dedent("\n".join(lines[index + 1 : end]) + "\n"),
                _marker(lines, index),
            )
        )
        index = end + 1
    return found


def _marker(lines: list[str], fence: int) -> tuple[str, str] | None:
    before = fence - 1
    while before >= 0 and not lines[before].strip():
        before -= 1
    found = MARKER.match(lines[before].strip()) if before >= 0 else None
    return (found.group(1), found.group(2)) if found else None


def all_blocks() -> list[Block]:
    return [block for path in documents() for block in blocks(path)]


def procedure(name: str) -> Block:
    """The one block marked ``<!-- procedure: NAME -->``."""
    found = [b for b in all_blocks() if b.marker == ("procedure", name)]
    assert len(found) == 1, f"expected one block marked procedure: {name}, found {len(found)}"
    return found[0]
