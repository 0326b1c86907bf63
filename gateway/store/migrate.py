"""Versioned schema migrations, shipped as package data in ``migrations/<dialect>/``.

A migration is a file ``NNNN_name.sql``; versions start at 1 and leave no gaps, so a ledger's
schema is exactly the set of versions it has applied. Applying them is the backend's job: each
dialect has its own transaction rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(dialect: str) -> tuple[Migration, ...]:
    """Every migration of ``dialect`` in version order. It reads files: call it in a thread."""
    folder = resources.files("gateway.store") / "migrations" / dialect
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.match(entry.name)
        if match is None:
            # A misnamed file would otherwise be skipped, and its schema change with it.
            raise ValueError(f"migration file name {entry.name!r} is not NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if versions != list(range(1, len(found) + 1)):
        raise ValueError(f"{dialect} migrations must be numbered 1, 2, 3...: found {versions}")
    return tuple(found)
