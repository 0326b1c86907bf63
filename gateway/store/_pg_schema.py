"""Bringing a PostgreSQL ledger up: its migrations, applied once whichever replica starts first.

Every replica runs ``migrate`` at open(). The check and the migrations run in one transaction
that first takes an advisory lock named after the ledger's schema, so replicas starting
together on a fresh database wait for each other instead of racing to create the same tables:
the first applies what is pending, the others find it done. PostgreSQL's DDL is transactional,
so a migration that fails leaves nothing half-applied.
"""

from __future__ import annotations

from gateway.errors import StoreError
from gateway.store._pg_connection import Conn
from gateway.store.migrate import Migration

# One lock per schema: two ledgers in one database (tests, staging beside production) do not
# wait for each other.
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('lakegate-migrate'), hashtext(current_schema()))"


async def migrate(conn: Conn, migrations: tuple[Migration, ...]) -> None:
    """Apply pending migrations in order, each with its schema_migrations row, under the lock."""
    async with conn.transaction():
        schema = await conn.fetchval("SELECT current_schema()")
        if schema is None:
            raise StoreError(
                "the PostgreSQL ledger has no schema to live in: the search_path names no "
                "schema that exists; create it, or fix search_path in the DSN"
            )
        await conn.execute(_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        newest = max((m.version for m in migrations), default=0)
        if done and max(done) > newest:
            raise StoreError(
                f"the PostgreSQL ledger is at migration {max(done)}, newer than this lakegate "
                f"knows ({newest}): run the newer lakegate, or restore a matching backup"
            )
        for migration in migrations:
            if migration.version in done:
                continue
            # No parameters: the simple protocol runs the whole file, function bodies and all.
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )


async def installation_id(conn: Conn) -> str:
    value = await conn.fetchval("SELECT value FROM meta WHERE key = 'installation_id'")
    if value is None:
        raise StoreError("the PostgreSQL ledger has no installation id")
    return str(value)
