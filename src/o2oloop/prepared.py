"""Statements for the hottest path, compiled once and run on the driver's own connection.

At the counter a redemption is a handful of indexed lookups and small writes that the
database answers in microseconds each; SQLAlchemy's per-execution machinery (execution
context, events, result metadata) and a Session per transaction cost many times that. So
the counter's statements are still written in SQLAlchemy Core, compiled by SQLAlchemy once
per dialect and converted by the columns' own types (their bind and result processors),
but executed on the DB-API cursor of a pooled connection. Everything else uses the ORM.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable
from sqlalchemy.sql.elements import BindParameter

Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Compiled:
    """One statement as one dialect runs it."""

    sql: str
    order: tuple[str, ...] | None  # parameter names in position order; None: named style
    fixed: dict[str, Any]  # values written into the statement itself, already converted
    bind_processors: dict[str, Processor]
    row: Any  # a namedtuple class of the result columns, or None
    result_processors: tuple[tuple[int, Processor], ...]

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        converted = dict(self.fixed)
        for name, value in values.items():
            process = self.bind_processors.get(name)
            converted[name] = value if process is None or value is None else process(value)
        if self.order is None:
            return converted
        return tuple(converted[name] for name in self.order)

    def row_of(self, raw: Any) -> Any:
        if not self.result_processors:
            return self.row._make(raw)
        values = list(raw)
        for index, process in self.result_processors:
            values[index] = process(values[index])
        return self.row._make(values)


class Prepared:
    """A Core statement to run through `DriverTransaction`; compiled on first use per dialect.

    Parameters are the statement's named `bindparam()`s; every other value in it (a literal
    such as `state == 'active'`) is bound once at compile time.
    """

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, Compiled] = {}

    def compiled(self, dialect: Dialect) -> Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = self._compile(dialect)
        return found

    def _compile(self, dialect: Dialect) -> Compiled:
        compiled: Any = self.statement.compile(dialect=dialect)
        fixed: dict[str, Any] = {}
        processors: dict[str, Processor] = {}
        for name, bind in compiled.binds.items():
            process = _bind_processor(bind, dialect)
            if process is not None:
                processors[name] = process
            if not bind.required:
                value = bind.effective_value
                fixed[name] = value if process is None or value is None else process(value)
        row, result_processors = None, ()
        columns = list(getattr(self.statement, "exported_columns", ()))  # SELECT or RETURNING
        if columns:
            # Unnamed columns (a bare count) get positional names: _0, _1 …
            names = [str(column.key) for column in columns]
            row = namedtuple("Row", names, rename=True)  # type: ignore[misc]
            result_processors = tuple(
                (index, process)
                for index, column in enumerate(columns)
                if (process := column.type.dialect_impl(dialect).result_processor(dialect, None))
            )
        order = tuple(compiled.positiontup) if dialect.positional else None
        return Compiled(compiled.string, order, fixed, processors, row, result_processors)


def _bind_processor(bind: BindParameter[Any], dialect: Dialect) -> Processor | None:
    return bind.type.dialect_impl(dialect).bind_processor(dialect)


class DriverTransaction:
    """`Prepared` statements inside one transaction of a DB-API connection.

    Either a lean transaction the caller began on a pooled connection (`Database.lean`), or
    the transaction of an ORM session (`of_session`), for work that also needs the ORM.
    """

    def __init__(self, connection: Any, dialect: Dialect, session: Session | None = None) -> None:
        self.connection = connection
        self.dialect = dialect
        self.cursor = connection.cursor()
        self._session = session

    @classmethod
    def of_session(cls, session: Session) -> DriverTransaction:
        session.flush()  # what the session holds must be visible to these statements
        connection = session.connection()
        return cls(connection.connection.driver_connection, connection.dialect, session)

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("this work needs an ORM transaction (run it with orm=True)")
        return self._session

    def _run(self, compiled: Compiled, values: Mapping[str, Any]) -> None:
        parameters = compiled.parameters(values)
        try:
            self.cursor.execute(compiled.sql, parameters)
        except self.dialect.loaded_dbapi.Error as error:
            raise wrapped(self.dialect, error, compiled.sql, parameters) from error

    def execute(self, statement: Prepared, **values: Any) -> int:
        """Run a write; the number of rows it touched."""
        self._run(statement.compiled(self.dialect), values)
        return self.cursor.rowcount

    def one_or_none(self, statement: Prepared, **values: Any) -> Any:
        compiled = statement.compiled(self.dialect)
        self._run(compiled, values)
        raw = self.cursor.fetchone()
        return None if raw is None else compiled.row_of(raw)

    def one(self, statement: Prepared, **values: Any) -> Any:
        row = self.one_or_none(statement, **values)
        if row is None:
            raise LookupError("the statement found no row")
        return row

    def scalar(self, statement: Prepared, **values: Any) -> Any:
        row = self.one_or_none(statement, **values)
        return None if row is None else row[0]


def wrapped(dialect: Dialect, error: Exception, sql: str | None, parameters: Any) -> Exception:
    """The driver's error as SQLAlchemy's own (OperationalError, IntegrityError …), so callers
    and the API's error mapping see the same exceptions as from the ORM."""
    return DBAPIError.instance(
        sql, parameters, error, dialect.loaded_dbapi.Error, hide_parameters=True, dialect=dialect
    )


def driver(work_in: Session | DriverTransaction) -> DriverTransaction:
    """The driver transaction of either: use cases on the hot path accept both."""
    if isinstance(work_in, DriverTransaction):
        return work_in
    return DriverTransaction.of_session(work_in)
