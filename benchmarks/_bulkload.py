"""Loading millions of rows into the migrated schema quickly, leaving it as the migrations made it.

`bulk_loading(db, tables)` sets the tables' secondary indexes (and, on PostgreSQL, their
foreign keys) aside, hands back a `load(table, columns, rows)` that writes one chunk per
transaction (executemany on SQLite, COPY on PostgreSQL), and on the way out recreates every
index and constraint from the definitions the database itself held before: the schema after
the load is the one the migrations built, only built once over the rows instead of row by row.

SQLite loads on a connection of its own with pragmas for the load only (no rollback journal,
no fsync, a 1 GiB page cache), then returns the file to write-ahead logging; the product's
connections set their own pragmas as they open. A load that is interrupted leaves a file to
throw away, not to reuse (the callers record a finished load beside it).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from o2oloop.db import Database

Load = Callable[[str, tuple[str, ...], Iterable[tuple]], None]


@contextmanager
def bulk_loading(db: Database, tables: tuple[str, ...]) -> Iterator[Load]:
    """`load` for the rows of `tables`; their indexes are rebuilt when the block ends."""
    if db.dialect == "sqlite":
        with _sqlite(db, tables) as load:
            yield load
        return
    with _postgresql(db, tables) as load:
        yield load


@contextmanager
def _sqlite(db: Database, tables: tuple[str, ...]) -> Iterator[Load]:
    db.engine.dispose()  # the journal mode changes only with no other connection open
    raw = sqlite3.connect(db.engine.url.database, isolation_level=None)
    try:
        raw.execute("PRAGMA journal_mode=OFF")
        raw.execute("PRAGMA synchronous=OFF")
        raw.execute("PRAGMA cache_size=-1048576")
        marks = ", ".join("?" for _ in tables)
        # Explicit CREATE INDEX statements only; the indexes behind PRIMARY KEY and UNIQUE
        # constraints have no SQL of their own and stay.
        indexes = raw.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({marks})",
            tables,
        ).fetchall()
        for name, _ in indexes:
            raw.execute(f'DROP INDEX "{name}"')

        def load(table: str, columns: tuple[str, ...], rows: Iterable[tuple]) -> None:
            names, places = ", ".join(columns), ", ".join("?" for _ in columns)
            raw.execute("BEGIN")
            raw.executemany(f"INSERT INTO {table} ({names}) VALUES ({places})", rows)
            raw.execute("COMMIT")

        yield load
        for _, sql in indexes:
            raw.execute(sql)
        raw.execute("PRAGMA journal_mode=WAL")
    finally:
        raw.close()


@contextmanager
def _postgresql(db: Database, tables: tuple[str, ...]) -> Iterator[Load]:
    pooled = db.engine.raw_connection()
    raw: Any = pooled.driver_connection
    try:
        raw.autocommit = True
        raw.execute("SET synchronous_commit = off")
        raw.execute("SET maintenance_work_mem = '512MB'")  # each index sorted in memory
        names = list(tables)
        keys = raw.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s)",
            (names,),
        ).fetchall()
        indexes = raw.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = ANY(%s) AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE contype IN ('p', 'u', 'x'))",
            (names,),
        ).fetchall()
        for table, name, _ in keys:
            raw.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            raw.execute(f'DROP INDEX "{name}"')

        def load(table: str, columns: tuple[str, ...], rows: Iterable[tuple]) -> None:
            with (
                raw.transaction(),
                raw.cursor() as cursor,
                cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)

        yield load
        for _, sql in indexes:
            raw.execute(sql)
        for table, name, definition in keys:  # each checked in one pass over the table
            raw.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for table in tables:  # as autovacuum would have by the time anyone reads them
            raw.execute(f"VACUUM ANALYZE {table}")
    finally:
        raw.autocommit = False
        pooled.close()
