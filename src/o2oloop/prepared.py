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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, MultipleResultsFound
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable
from sqlalchemy.sql.elements import BindParameter

Processor = Callable[[Any], Any]


class Compiled:
    """One statement as one dialect runs it."""

    __slots__ = (
        "bind_processors",
        "columns",
        "defaults",
        "dialect",
        "fixed",
        "kind",
        "locks",
        "order",
        "required",
        "result_processors",
        "row",
        "sql",
        "table",
    )

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled: Any = statement.compile(dialect=dialect)
        self.sql: str = compiled.string
        self.dialect = dialect
        self.kind = _kind(compiled)  # select, insert, update or delete
        self.locks = getattr(statement, "_for_update_arg", None) is not None  # FOR UPDATE
        written = getattr(statement, "table", None)
        self.table: str | None = None if written is None else str(written.name)
        # Parameter names in position order (qmark style), or None for named styles.
        self.order = tuple(compiled.positiontup) if dialect.positional else None
        self.fixed: dict[str, Any] = {}  # values written into the statement, converted
        self.defaults: dict[str, Callable[[], Any]] = {}  # a column's default, per execution
        self.bind_processors: dict[str, Processor] = {}
        self.required: frozenset[str] = frozenset()
        prefetched = {column.key: column.default for column in compiled.insert_prefetch} | {
            column.key: column.onupdate for column in compiled.update_prefetch
        }
        required = set()
        for name, bind in compiled.binds.items():
            if bind.expanding:
                raise ArgumentError(f"{name}: IN (…) parameters are not supported here")
            process = _bind_processor(bind, dialect)
            if process is not None:
                self.bind_processors[name] = process
            if name in prefetched:  # a column the statement leaves to its default
                self._default(name, prefetched[name])
            elif bind.required:
                required.add(name)
            else:
                self.fixed[name] = self._converted(name, bind.effective_value)
        self.required = frozenset(required)
        self.columns = list(getattr(statement, "exported_columns", ()))  # SELECT or RETURNING
        # Unnamed columns (a bare count) get positional names: _0, _1 …
        names = [str(column.key) for column in self.columns]
        self.row: Any = namedtuple("Row", names, rename=True) if names else None  # type: ignore[misc]
        self.result_processors: tuple[tuple[int, Processor], ...] | None = None

    def _default(self, name: str, default: Any) -> None:
        if default is None:
            self.fixed[name] = None
        elif default.is_scalar:
            self.fixed[name] = self._converted(name, default.arg)
        elif default.is_callable:
            self.defaults[name] = lambda: default.arg(None)
        else:
            raise ArgumentError(f"{name}: give this column a value; its default runs SQL")

    def _converted(self, name: str, value: Any) -> Any:
        process = self.bind_processors.get(name)
        return value if process is None or value is None else process(value)

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        if not self.required <= values.keys():
            missing = ", ".join(sorted(self.required - values.keys()))
            raise ArgumentError(f"no value given for the statement's parameters: {missing}")
        converted = dict(self.fixed)
        for name, make in self.defaults.items():
            if name not in values:
                converted[name] = self._converted(name, make())
        for name, value in values.items():
            process = self.bind_processors.get(name)
            converted[name] = value if process is None or value is None else process(value)
        if self.order is None:
            return converted
        return tuple(converted[name] for name in self.order)

    @property
    def reads_only(self) -> bool:
        """A plain SELECT: it writes nothing and takes no lock."""
        return self.kind == "select" and not self.locks

    def row_of(self, raw: Any, cursor: Any, offset: int = 0) -> Any:
        """The row of this statement's columns; they start at `offset` of the cursor's
        (a statement run as part of a larger one, `combined.OneStatement`)."""
        processors = self.result_processors
        if processors is None:
            # Some types convert by what the driver reports (PostgreSQL's numbers): known
            # only once a statement has run, so worked out at the first row (psycopg builds
            # a cursor's description anew each time it is asked for).
            description = cursor.description
            processors = self.result_processors = tuple(
                (index, process)
                for index, column in enumerate(self.columns)
                if (
                    process := _result_processor(
                        column, self.dialect, description[offset + index][1]
                    )
                )
            )
        if not processors:
            return self.row._make(raw)
        values = list(raw)
        for index, process in processors:
            values[index] = process(values[index])
        return self.row._make(values)


class Prepared:
    """A Core statement to run through `DriverTransaction`; compiled on first use per dialect.

    Parameters are the statement's named `bindparam()`s; every other value in it (a literal
    such as `state == 'active'`, a column's scalar default) is bound once at compile time.
    An INSERT … ON CONFLICT is given as a function of the dialect's own `insert` construct,
    since each dialect spells ON CONFLICT with its own.
    """

    def __init__(self, statement: Executable | Callable[[Callable[..., Any]], Executable]) -> None:
        self.statement = statement
        self._compiled: dict[str, Compiled] = {}

    def compiled(self, dialect: Dialect) -> Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            statement = self.statement
            if not isinstance(statement, Executable):
                statement = statement(dialect_insert(dialect.name))
            found = self._compiled[dialect.name] = Compiled(statement, dialect)
        return found


def dialect_insert(dialect_name: str) -> Callable[..., Any]:
    """The dialect's own `insert`, the one with ON CONFLICT (SQLite or PostgreSQL)."""
    return postgresql.insert if dialect_name == "postgresql" else sqlite.insert


def _kind(compiled: Any) -> str:
    if compiled.isinsert:
        return "insert"
    if compiled.isupdate:
        return "update"
    return "delete" if compiled.isdelete else "select"


def _result_processor(column: Any, dialect: Dialect, type_code: Any) -> Processor | None:
    return column.type.dialect_impl(dialect).result_processor(dialect, type_code)


def _bind_processor(bind: BindParameter[Any], dialect: Dialect) -> Processor | None:
    return bind.type.dialect_impl(dialect).bind_processor(dialect)


class DriverTransaction:
    """`Prepared` statements inside one transaction of a DB-API connection.

    Either a lean transaction the caller began on a pooled connection (`Database.lean`), or
    the transaction of an ORM session (`of_session`), for work that also needs the ORM.

    On PostgreSQL a lean write runs in the driver's pipeline mode (`pipeline`): a statement
    whose answer nobody reads yet (`send`) goes out with the next one that is read, so the
    round trips are those the work waits on, not one per statement.
    """

    def __init__(
        self,
        connection: Any,
        dialect: Dialect,
        session: Session | None = None,
        pipeline: Any | None = None,
    ) -> None:
        self.connection = connection
        self.dialect = dialect
        self.cursor = connection.cursor()
        self.pipeline = pipeline
        self._session = session
        self._deferred: list[tuple[Prepared, Mapping[str, Any]]] = []
        self._ahead: dict[tuple[int, tuple[tuple[str, Any], ...]], Any] = {}  # cursors
        self._unsynced = False  # statements sent since the last sync

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

    @property
    def session_or_none(self) -> Session | None:
        return self._session

    def defer(self, statement: Prepared, values: Mapping[str, Any]) -> None:
        """Run this write just before the commit, batched with the others of its statement
        (the outbox's inserts: one `executemany` for a whole group commit)."""
        self._deferred.append((statement, values))

    def write_deferred(self) -> None:
        """The deferred writes, one `executemany` per statement; called before the commit."""
        pending, self._deferred = self._deferred, []
        by_statement: dict[int, tuple[Compiled, list[Any]]] = {}
        for statement, values in pending:
            compiled = statement.compiled(self.dialect)
            by_statement.setdefault(id(statement), (compiled, []))[1].append(
                compiled.parameters(values)
            )
        for compiled, rows in by_statement.values():
            try:
                self.cursor.executemany(compiled.sql, rows)
            except self.dialect.loaded_dbapi.Error as error:
                raise wrapped(self.dialect, error, compiled.sql, None) from error

    @property
    def in_transaction(self) -> bool:
        """Whether the transaction is still open (the database may end it on an error)."""
        sqlite_state = getattr(self.connection, "in_transaction", None)
        if sqlite_state is not None:
            return bool(sqlite_state)
        return self.connection.info.transaction_status.name != "IDLE"

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested unit of work: an error inside undoes only what was done inside (deferred
        writes included)."""
        self._statement("SAVEPOINT work")
        deferred = len(self._deferred)
        try:
            yield
        except BaseException:
            del self._deferred[deferred:]
            self._statement("ROLLBACK TO SAVEPOINT work")
            self._statement("RELEASE SAVEPOINT work")
            raise
        self._statement("RELEASE SAVEPOINT work")

    def _statement(self, sql: str) -> None:
        try:
            self.cursor.execute(sql)
        except self.dialect.loaded_dbapi.Error as error:
            raise wrapped(self.dialect, error, sql, None) from error

    def ahead(self, statement: Prepared, **values: Any) -> None:
        """Send a read now whose answer the work will ask for later (with these very values):
        pipelined, reads sent ahead share one round trip with the next read. Elsewhere a
        no-op: the read runs when asked for."""
        if self.pipeline is None:
            return
        compiled = statement.compiled(self.dialect)
        self._run(compiled, values, answer=False)
        self._ahead[_key(statement, values)] = self.cursor

    def _run(self, compiled: Compiled, values: Mapping[str, Any], *, answer: bool = True) -> None:
        parameters = compiled.parameters(values)
        try:
            if self.pipeline is None:
                self.cursor.execute(compiled.sql, parameters)
                return
            # Each pipelined statement has its own cursor, so a later one cannot take over
            # its answer; the one whose answer is read waits for everything sent before it.
            self.cursor = self.connection.cursor()
            self.cursor.execute(compiled.sql, parameters)
            self._unsynced = True
            if answer:
                self._sync()
        except self.dialect.loaded_dbapi.Error as error:
            raise wrapped(self.dialect, error, compiled.sql, parameters) from error

    def _sync(self) -> None:
        self.pipeline.sync()
        self._unsynced = False

    def _read(self, statement: Prepared, values: Mapping[str, Any]) -> Compiled:
        """Run a read (or take up the one sent `ahead`); its answer is on `self.cursor`."""
        compiled = statement.compiled(self.dialect)
        sent = self._ahead.pop(_key(statement, values), None) if self._ahead else None
        if sent is None:
            self._run(compiled, values)
            return compiled
        self.cursor = sent
        if self._unsynced:
            try:
                self._sync()
            except self.dialect.loaded_dbapi.Error as error:
                raise wrapped(self.dialect, error, compiled.sql, None) from error
        return compiled

    def execute(self, statement: Prepared, **values: Any) -> int:
        """Run a write; the number of rows it touched."""
        self._run(statement.compiled(self.dialect), values)
        return self.cursor.rowcount

    def send(self, statement: Prepared, **values: Any) -> None:
        """Run a write whose answer nobody needs: pipelined, it goes out with the next
        statement that is read (or the commit); an error in it fails the transaction."""
        self._run(statement.compiled(self.dialect), values, answer=False)

    def take(self, statement: Prepared, lost: Callable[[], Exception], /, **values: Any) -> None:
        """The write only one attempt can win (a conditional UPDATE): unless it touches
        exactly one row, `lost()` is raised, and nothing of the work is kept. Here it runs
        at once; in one statement (`combined.OneStatement`) it runs with every other write
        of the work, and those are written only if it wins."""
        if self.execute(statement, **values) != 1:
            raise lost()

    def insert_new(
        self, statement: Prepared, conflict: Callable[[], Exception], /, **values: Any
    ) -> None:
        """Insert a row whose unique key a concurrent unit of work may have written first:
        then `conflict()` is raised instead of the IntegrityError (and nothing is kept)."""
        try:
            self._run(statement.compiled(self.dialect), values)
        except IntegrityError as error:
            if is_unique_violation(error):
                raise conflict() from error
            raise

    def has_ahead(self, statement: Prepared, **values: Any) -> bool:
        """Whether this read, with these very values, was sent ahead and not yet read."""
        return _key(statement, values) in self._ahead

    def one_or_none(self, statement: Prepared, **values: Any) -> Any:
        """The one row, or None; more than one row is an error, as in SQLAlchemy."""
        compiled = self._read(statement, values)
        raw = self.cursor.fetchone()
        if raw is None:
            return None
        if self.cursor.fetchone() is not None:
            raise MultipleResultsFound("the statement found more than one row")
        return compiled.row_of(raw, self.cursor)

    def one(self, statement: Prepared, **values: Any) -> Any:
        row = self.one_or_none(statement, **values)
        if row is None:
            raise LookupError("the statement found no row")
        return row

    def scalar(self, statement: Prepared, **values: Any) -> Any:
        row = self.one_or_none(statement, **values)
        return None if row is None else row[0]


def _key(statement: Prepared, values: Mapping[str, Any]) -> tuple[int, tuple[tuple[str, Any], ...]]:
    return id(statement), tuple(sorted(values.items()))


def is_unique_violation(error: Exception) -> bool:
    """Whether a database error (SQLAlchemy's or the driver's) is a unique key's violation."""
    orig = error.orig if isinstance(error, DBAPIError) else error
    return (
        getattr(orig, "sqlstate", None) == "23505"  # PostgreSQL
        or getattr(orig, "sqlite_errorname", None) == "SQLITE_CONSTRAINT_UNIQUE"
    )


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
