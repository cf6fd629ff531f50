"""A unit of work as two statements on PostgreSQL: its reads as one, its writes as one.

On PostgreSQL the driver's work per statement (psycopg builds a cursor, converts, sends,
waits and reads each answer in Python) costs more than the database's own work on the
counter's small indexed lookups and inserts. So a `OneStatement` sends the reads sent
`ahead` as one SELECT (each a LATERAL subquery of one row), and keeps every write until the
end, where they go as one statement: data-modifying WITH queries, each insert written only
if the work's `take` (the conditional UPDATE only one attempt can win) touched its row.

It runs in autocommit: a single statement is atomic, so the writes need no BEGIN or COMMIT
of their own, and the reads, which take no lock, need no transaction either (the write
checks again whatever can have changed since). Work that must hold a lock between its
reads and its writes, or read what it wrote, needs a transaction (`Database.lean`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import ArgumentError, IntegrityError

from o2oloop.prepared import Compiled, DriverTransaction, Prepared, _key, wrapped

_PARAMETER = re.compile(r"%\((\w+)\)s")


class _Combined:
    """A statement made of parts: its text with PostgreSQL's own $n parameters (psycopg
    parses no placeholders in it, `psycopg.RawCursor`), and which part's parameter each
    $n is."""

    __slots__ = ("order", "sql")

    def __init__(self) -> None:
        self.sql = b""
        self.order: list[tuple[int, str]] = []

    def numbered(self, part: int, sql: str) -> str:
        """The part's SQL with its named parameters numbered after those already taken."""

        def number(match: re.Match[str]) -> str:
            self.order.append((part, match.group(1)))
            return f"${len(self.order)}"

        return _PARAMETER.sub(number, sql)

    def parameters(
        self, parts: Sequence[Compiled], values: Sequence[Mapping[str, Any]]
    ) -> tuple[Any, ...]:
        converted: list[Any] = [  # PostgreSQL's parameters are named: a dict per part
            compiled.parameters(part_values)
            for compiled, part_values in zip(parts, values, strict=True)
        ]
        return tuple(converted[part][name] for part, name in self.order)


_read_statements: dict[tuple[Compiled, ...], _Combined] = {}
_write_statements: dict[tuple[Compiled | None, tuple[Compiled, ...]], _Combined] = {}


class OneStatement(DriverTransaction):
    """Reads sent ahead answered by one SELECT; every write kept for one statement at the
    end (`finish`), written only if the `take` wins. PostgreSQL, in autocommit mode."""

    def __init__(self, connection: Any, dialect: Dialect) -> None:
        super().__init__(connection, dialect)
        self._raw = psycopg.RawCursor(connection)
        self._pending: list[tuple[Prepared, Mapping[str, Any]]] = []  # reads sent ahead
        self._answers: dict[Any, Any] = {}  # their rows, once read (None: no row)
        self._take: tuple[Compiled, Mapping[str, Any], Callable[[], Exception]] | None = None
        self._writes: list[tuple[Compiled, Mapping[str, Any]]] = []
        self._conflicts: dict[str, Callable[[], Exception]] = {}  # table -> what to raise

    # ---- reads ----

    def ahead(self, statement: Prepared, **values: Any) -> None:
        key = _key(statement, values)
        if key not in self._ahead:
            self._ahead[key] = None
            self._pending.append((statement, values))

    def has_ahead(self, statement: Prepared, **values: Any) -> bool:
        key = _key(statement, values)
        return key in self._ahead or key in self._answers

    def one_or_none(self, statement: Prepared, **values: Any) -> Any:
        key = _key(statement, values)
        if key in self._ahead:
            self._read_ahead()
        if key in self._answers:
            return self._answers.pop(key)
        compiled = statement.compiled(self.dialect)
        if not compiled.reads_only:
            raise RuntimeError("a write whose answer is read needs a transaction (lean)")
        return super().one_or_none(statement, **values)

    def _read_ahead(self) -> None:
        """Every read sent ahead, in one SELECT; each part's row kept for its asking."""
        pending, self._pending = self._pending, []
        self._ahead.clear()
        parts = tuple(statement.compiled(self.dialect) for statement, _ in pending)
        combined = _read_statements.get(parts)
        if combined is None:
            combined = _read_statements[parts] = _one_select(parts)
        parameters = combined.parameters(parts, [values for _, values in pending])
        rows = self._fetch(combined.sql, parameters)
        if len(rows) != 1:  # a part found more than one row: each asks on its own
            return
        raw, offset = rows[0], 0
        for part, (statement, part_values) in zip(parts, pending, strict=True):
            found, width = raw[offset], len(part.columns)
            row = part.row_of(raw[offset + 1 : offset + 1 + width], self._raw, offset + 1)
            self._answers[_key(statement, part_values)] = row if found is not None else None
            offset += 1 + width

    def _fetch(self, sql: bytes, parameters: tuple[Any, ...]) -> list[Any]:
        try:
            self._raw.execute(sql, parameters)
            return self._raw.fetchall()
        except self.dialect.loaded_dbapi.Error as error:
            raise wrapped(self.dialect, error, sql.decode(), parameters) from error

    # ---- writes, kept for the end ----

    def take(self, statement: Prepared, lost: Callable[[], Exception], /, **values: Any) -> None:
        compiled = statement.compiled(self.dialect)
        if self._take is not None or compiled.kind != "update" or "RETURNING" in compiled.sql:
            raise ArgumentError("one statement takes with one UPDATE without RETURNING")
        self._take = (compiled, values, lost)

    def send(self, statement: Prepared, **values: Any) -> None:
        self._writes.append((statement.compiled(self.dialect), values))

    def defer(self, statement: Prepared, values: Mapping[str, Any]) -> None:
        self.send(statement, **values)

    def insert_new(
        self, statement: Prepared, conflict: Callable[[], Exception], /, **values: Any
    ) -> None:
        compiled = statement.compiled(self.dialect)
        assert compiled.table is not None
        self._conflicts[compiled.table] = conflict
        self._writes.append((compiled, values))

    def execute(self, statement: Prepared, **values: Any) -> int:
        raise RuntimeError("a write whose row count is read needs a transaction (lean)")

    def savepoint(self) -> Any:
        raise RuntimeError("one statement has no savepoints")

    def write_deferred(self) -> None:
        """Nothing: the writes go with `finish`."""

    @property
    def in_transaction(self) -> bool:
        return False

    def finish(self) -> None:
        """Write everything kept, as one statement; raises the take's `lost()` if it did not
        win (then nothing was written), an `insert_new`'s conflict if its key was taken."""
        take, writes = self._take, self._writes
        self._take, self._writes = None, []
        if take is None and not writes:
            return
        shape = (take[0] if take else None, tuple(compiled for compiled, _ in writes))
        combined = _write_statements.get(shape)
        if combined is None:
            combined = _write_statements[shape] = _one_write(*shape)
        parts, values = list(shape[1]), [values for _, values in writes]
        if take is not None:  # the take is the last part
            parts.append(take[0])
            values.append(take[1])
        try:
            rows = self._fetch(combined.sql, combined.parameters(parts, values))
        except IntegrityError as error:
            table = getattr(getattr(error.orig, "diag", None), "table_name", None)
            conflict = self._conflicts.get(table) if table else None
            if conflict is not None and getattr(error.orig, "sqlstate", None) == "23505":
                raise conflict() from error
            raise
        if take is not None and rows[0][0] != 1:
            raise take[2]()


def _one_select(parts: tuple[Compiled, ...]) -> _Combined:
    """One row: each part's columns after a marker that is NULL if the part found no row."""
    combined = _Combined()
    joins = " ".join(
        f"LEFT JOIN LATERAL (SELECT 1 AS found, q.* FROM ({combined.numbered(n, part.sql)}) AS q)"
        f" AS r{n} ON true"
        for n, part in enumerate(parts)
    )
    columns = ", ".join(f"r{n}.*" for n in range(len(parts)))
    combined.sql = f"SELECT {columns} FROM (SELECT 1) AS one {joins}".encode()
    return combined


def _one_write(take: Compiled | None, writes: tuple[Compiled, ...]) -> _Combined:
    """The writes as WITH queries; with a take, each is an INSERT of its row only if the
    take's UPDATE returned one (`taken`), and the statement answers the take's count. The
    take's parameters are the last part's (after the writes')."""
    combined, queries = _Combined(), []
    for n, write in enumerate(writes):
        sql = combined.numbered(n, write.sql)
        if take is not None:
            if write.kind != "insert":
                raise ArgumentError("after a take, one statement writes only INSERTs")
            sql = _if_taken(sql)
        queries.append(f"w{n} AS ({sql})")
    if take is not None:
        queries.insert(0, f"taken AS ({combined.numbered(len(writes), take.sql)} RETURNING 1)")
    answer = "(SELECT count(*) FROM taken)" if take is not None else "1"
    combined.sql = f"WITH {', '.join(queries)} SELECT {answer}".encode()
    return combined


def _if_taken(sql: str) -> str:
    """`INSERT INTO t (…) VALUES (…) …` as `INSERT INTO t (…) SELECT … FROM taken …`."""
    start = sql.find(" VALUES (")
    if start < 0 or "'" in sql:
        raise ArgumentError(f"not an INSERT of one row of parameters: {sql[:80]}")
    depth, opening = 0, start + len(" VALUES ")
    for end in range(opening, len(sql)):
        depth += {"(": 1, ")": -1}.get(sql[end], 0)
        if depth == 0:
            return f"{sql[:start]} SELECT {sql[opening + 1 : end]} FROM taken{sql[end + 1 :]}"
    raise ArgumentError(f"unbalanced VALUES: {sql[:80]}")
