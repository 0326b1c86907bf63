"""The README's real-client table names only tests that exist in this suite."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# `test_x.py::test_name` or `test_x.py::test_name[param]` in a table row.
CELL = re.compile(r"`(test_\w+\.py)::(test_\w+)(?:\[([\w.-]+)\])?`")


def table_cells() -> list[tuple[str, str, str | None]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Real clients") :]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [m.groups() for row in rows for m in CELL.finditer(row)]


def test_every_row_names_a_test() -> None:
    """Each data row of the table (past the header) names one test."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Real clients") :]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    rows = [line for line in lines[2:] if not line.startswith("| ---")]
    assert rows
    assert all(CELL.search(row) for row in rows), [r for r in rows if not CELL.search(r)]


def test_every_named_test_exists() -> None:
    """The file is in tests/clients, defines the test, and uses the named parameter."""
    cells = table_cells()
    assert len(cells) >= 10
    for module, name, param in cells:
        source = (HERE / module).read_text(encoding="utf-8")
        assert re.search(rf"^(async )?def {name}\(", source, re.MULTILINE), (module, name)
        if param is not None:
            assert f'"{param}"' in source, (module, name, param)
