"""Bulk INSERT of plain rows on the session's own DB-API connection.

SQLAlchemy's executemany builds parameters row by row through its compiler (a few
microseconds each, most of a 100,000-member launch); here the statement is compiled once
and each column's own bind processor (UTC datetimes, enums) is applied directly, so the
stored values are exactly what the ORM would have written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session


def insert_rows(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], *, ignore_conflicts_on=None
) -> None:
    """INSERT every row (all rows have the same keys); ON CONFLICT (cols) DO NOTHING if given."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    names = list(rows[0])
    columns = [table.c[name] for name in names]
    processors = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
    marks = ", ".join("?" if dialect.paramstyle == "qmark" else "%s" for _ in names)
    quoted = ", ".join(dialect.identifier_preparer.quote(n) for n in names)
    sql = f"INSERT INTO {table.name} ({quoted}) VALUES ({marks})"
    if ignore_conflicts_on:
        sql += f" ON CONFLICT ({', '.join(ignore_conflicts_on)}) DO NOTHING"
    values = [
        tuple(
            p(row[n]) if p is not None and row[n] is not None else row[n]
            for n, p in zip(names, processors, strict=True)
        )
        for row in rows
    ]
    cursor = connection.connection.driver_connection.cursor()
    try:
        cursor.executemany(sql, values)
    finally:
        cursor.close()
