"""Engine, sessions, the declarative Base and the transaction helper.

The entry point (a route, a CLI command, a job) owns the transaction; services only flush.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import fcntl
import os
import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import DateTime, Enum, MetaData, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator
from starlette.concurrency import run_in_threadpool

from o2oloop import clock
from o2oloop.combined import OneStatement
from o2oloop.prepared import DriverTransaction, wrapped

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


_SEEDED_IDS: ContextVar[random.Random | None] = ContextVar("o2oloop_seeded_ids", default=None)


def new_id(prefix: str) -> str:
    """A time-sortable, unguessable id such as `mer_01jb8…`: 48 bits of ms time, 80 random bits.

    Time-sortable so cursor pagination by id follows creation order; random so ids reveal
    neither volume nor neighbours. Inside `seeded_ids` (the demo city only) the bits come
    from the seed and the time from the product's clock, so one seed builds one city.
    """
    seeded = _SEEDED_IDS.get()
    if seeded is None:
        value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    else:
        value = (int(clock.now().timestamp() * 1000) << 80) | seeded.getrandbits(80)
    chars = []
    for _ in range(26):
        value, r = divmod(value, 32)
        chars.append(_CROCKFORD[r])
    return f"{prefix}_{''.join(reversed(chars))}"


_B32_TO_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD)


def new_ids(prefix: str, n: int) -> list[str]:
    """`n` ids of `new_id`'s shape made at once (a campaign's send makes thousands): the time
    part is encoded once and each random part is base32 of ten random bytes, instead of
    26 divisions per id. Inside `seeded_ids` they are `new_id`'s own, drawn from the seed."""
    if _SEEDED_IDS.get() is not None:
        return [new_id(prefix) for _ in range(n)]
    stamp = int(time.time() * 1000)
    head = "".join(_CROCKFORD[(stamp >> (5 * i)) & 31] for i in range(9, -1, -1))
    tails = base64.b32encode(secrets.token_bytes(10 * n)).decode().translate(_B32_TO_CROCKFORD)
    return [f"{prefix}_{head}{tails[16 * i : 16 * i + 16]}" for i in range(n)]


@contextmanager
def seeded_ids(seed: int) -> Iterator[None]:
    """Ids drawn from `seed` in this context (the demo city), so a rebuild makes the same
    ids in the same order: holdout buckets, id-ordered pages and ties all come out alike.
    Never for real data: whoever knows the seed could guess such ids."""
    token = _SEEDED_IDS.set(random.Random(seed))
    try:
        yield
    finally:
        _SEEDED_IDS.reset(token)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else clock.as_utc(value)


def str_enum(enum_class: type[enum.Enum], length: int = 20) -> Enum:
    """An enum column stored as its readable value, checked in Python, portable everywhere."""
    return Enum(
        enum_class,
        native_enum=False,
        length=length,
        values_callable=lambda members: [member.value for member in members],
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Another connection's commit empties this one's page cache; mapped pages make the
        # re-read a memory access instead of a read() per page.
        cursor.execute("PRAGMA mmap_size=1073741824")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Take the write lock up front: a deferred transaction that reads and then writes can
        # fail with SQLITE_BUSY instead of waiting its turn. Read-only work (Database.reading)
        # begins deferred and never queues for the lock.
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


BUSY_TIMEOUT_SECONDS = 30.0
Result = TypeVar("Result")
Checked = TypeVar("Checked")


class WriterQueue:
    """Writers to one SQLite file take turns here rather than in SQLite's busy handler.

    SQLite lets one writer in at a time, and a writer that finds the lock taken sleeps in
    growing steps (1, 2, 5, 10 … 100 ms) before it looks again: with several worker processes
    that sleeping, not the work, makes the slow tail. Here the turn is an flock on a file
    beside the database, taken through a descriptor of each thread's own (flock excludes
    descriptors, not processes), so a waiter is woken the moment the turn is free.

    The hottest writes (`Database.run_transaction`) also queue per process: whoever gets the
    turn runs the work queued meanwhile, up to `BATCH`, and commits it together (group
    commit): each piece of work in a savepoint of one transaction, so one that fails undoes
    only itself, and every answer waits for the one commit. The turn changes hands, and the
    log is written, once per batch rather than once per transaction. Work that needs a
    transaction of its own (an ORM session) runs in the same turn, on its own. Processes that
    do not take part (the sqlite3 shell) still meet SQLite's own lock and busy timeout.
    """

    BATCH = 32
    CHECKPOINT_EVERY = 100  # turns of this process

    def __init__(
        self,
        lock_file: Path,
        checkpoint: Callable[[], None],
        transaction: Callable[[], AbstractContextManager[DriverTransaction]],
        timeout: float = BUSY_TIMEOUT_SECONDS,
    ) -> None:
        self.lock_file = lock_file
        self.checkpoint = checkpoint
        self.transaction = transaction
        self.timeout = timeout
        self._turns = 0
        self._checkpointing = threading.Lock()
        self._descriptors = threading.local()
        self._queue: deque[_Queued] = deque()
        self._draining = False
        self._background: set[asyncio.Task[Any]] = set()

    def _descriptor(self) -> int:
        """This thread's own descriptor of the lock file (reopened in a forked child)."""
        mine = self._descriptors
        if getattr(mine, "pid", None) != os.getpid():
            mine.fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
            mine.pid = os.getpid()
        return mine.fd

    def _busy(self) -> OperationalError:
        waited = TimeoutError(f"no turn to write within {self.timeout:g} s")
        return OperationalError("BEGIN IMMEDIATE", None, waited)

    def acquire(self) -> int:
        """Wait for the turn (up to the timeout) in this thread; returns what `release` takes."""
        return self._lock(self._descriptor())

    def acquire_own(self) -> int:
        """Wait for a turn held through a descriptor of its own, not this thread's: for a
        transaction that outlives the thread's part in it (`HeldTransaction`), so the thread
        can go on to other work that must wait for that turn like anyone else's."""
        descriptor = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            return self._lock(descriptor)
        except BaseException:
            os.close(descriptor)
            raise

    def release_own(self, descriptor: int) -> None:
        try:
            self.release(descriptor)
        finally:
            os.close(descriptor)

    def _lock(self, descriptor: int) -> int:
        deadline = time.monotonic() + self.timeout
        pause = 0.0001
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return descriptor
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise self._busy() from None
            time.sleep(pause)
            pause = min(pause * 2, 0.001)

    def release(self, descriptor: int | None = None) -> None:
        """Give the turn back (this thread's, by default); now and then, checkpoint."""
        fcntl.flock(self._descriptor() if descriptor is None else descriptor, fcntl.LOCK_UN)
        if self._count_turn():
            self._checkpoint()

    def _count_turn(self) -> bool:
        """Whether this turn is one that should be followed by a checkpoint."""
        self._turns += 1
        if self._turns < self.CHECKPOINT_EVERY:
            return False
        self._turns = 0
        return True

    def _checkpoint(self) -> None:
        """A passive checkpoint, outside the turn: writers go on appending to the log.

        Connections of a `Database` with a writer queue do not checkpoint on commit, which
        would copy pages and fsync while holding everyone's turn.
        """
        if self._checkpointing.acquire(blocking=False):
            try:
                self.checkpoint()
            finally:
                self._checkpointing.release()

    def _wait_for_turn(self) -> int:
        """Block this (pool) thread in the kernel until the turn is ours. No timeout here:
        every queued transaction has its own."""
        descriptor = self._descriptor()
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        return descriptor

    async def run(self, work: Callable[[DriverTransaction], Result]) -> Result:
        """Queue `work` for this process's next turn, in its batch's shared transaction."""
        return await self._queued(_Queued(work, shared=True))

    async def run_alone(self, work: Callable[[], Result]) -> Result:
        """Queue `work` (one whole transaction of its own) for this process's next turn."""
        return await self._queued(_Queued(work, shared=False))

    async def _queued(self, item: _Queued) -> Any:
        item.future = asyncio.get_running_loop().create_future()
        self._queue.append(item)
        if not self._draining:
            self._draining = True
            self._in_background(self._drain())
        try:
            return await asyncio.wait_for(asyncio.shield(item.future), self.timeout)
        except TimeoutError:
            item.future.cancel()  # if its turn comes after all, it is skipped
            raise self._busy() from None

    async def _drain(self) -> None:
        try:
            while self._queue:
                descriptor = await run_in_threadpool(self._wait_for_turn)
                try:
                    batch = [
                        self._queue.popleft() for _ in range(min(len(self._queue), self.BATCH))
                    ]
                    batch = [item for item in batch if not item.future.done()]
                    self._run_shared([item for item in batch if item.shared])
                    for item in batch:
                        if not item.shared:
                            item.run_alone()
                finally:
                    fcntl.flock(descriptor, fcntl.LOCK_UN)
                for item in batch:
                    item.answer()
                if self._count_turn():
                    self._in_background(run_in_threadpool(self._checkpoint))
        finally:
            self._draining = False

    def _run_shared(self, items: list[_Queued]) -> None:
        """Every item in a savepoint of one transaction; if the commit fails, none is kept."""
        if not items:
            return
        try:
            with self.transaction() as transaction:
                for item in items:
                    try:
                        with transaction.savepoint():
                            item.result = item.work(transaction)
                    except Exception as error:
                        item.error = error
                        if not transaction.in_transaction:
                            # The database ended the whole transaction (SQLite does on some
                            # I/O errors): what the batch wrote is gone, and what follows
                            # must not run outside a transaction.
                            raise
        except Exception as error:
            for item in items:
                if item.error is None:
                    item.error = error

    def _in_background(self, job: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self._background.add(task)  # the loop keeps only a weak reference
        task.add_done_callback(self._background.discard)


def _abandon(pooled: Any, dialect: Any, error: BaseException) -> None:
    """Undo a failed lean transaction; a connection that has died leaves the pool for good,
    so the next transaction gets a live one instead of the same error."""
    driver_error = error.orig if isinstance(error, DBAPIError) else error
    if isinstance(driver_error, dialect.loaded_dbapi.Error) and dialect.is_disconnect(
        driver_error, pooled.driver_connection, None
    ):
        pooled.invalidate(driver_error)
        return
    try:
        pooled.driver_connection.rollback()
    except dialect.loaded_dbapi.Error as failed:
        pooled.invalidate(failed)


@contextmanager
def _pipelined(connection: Any, dialect: Any, *, write: bool) -> Iterator[DriverTransaction]:
    """A lean transaction in psycopg's pipeline mode, with BEGIN and COMMIT of our own.

    psycopg waits for the answer to its own BEGIN and COMMIT (a round trip each, and one
    more to leave the pipeline); sent as plain statements in autocommit mode, BEGIN travels
    with the first statement whose answer is read and COMMIT with the pipeline's closing
    sync, so the round trips are only those the work itself waits on.
    """
    connection.autocommit = True
    with connection.pipeline() as pipeline:
        transaction = DriverTransaction(connection, dialect, pipeline=pipeline)
        transaction.cursor.execute("BEGIN" if write else "BEGIN READ ONLY")
        yield transaction
        if write:
            transaction.write_deferred()
        transaction.cursor.execute("COMMIT")  # answered with the pipeline's closing sync


def _end_autocommit(connection: Any) -> None:
    """Hand the connection back as the pool lends it: no transaction, not in autocommit."""
    if not connection.autocommit:
        return
    if connection.info.transaction_status.name != "IDLE":
        connection.rollback()
    connection.autocommit = False


class _Queued:
    """One piece of work waiting for the turn, and what came of it."""

    __slots__ = ("error", "future", "result", "shared", "work")

    def __init__(self, work: Callable[..., Any], *, shared: bool) -> None:
        self.work = work
        self.shared = shared
        self.future: asyncio.Future[Any]
        self.result: Any = None
        self.error: Exception | None = None

    def run_alone(self) -> None:
        try:
            self.result = self.work()
        except Exception as error:
            self.error = error

    def answer(self) -> None:
        """Hand the outcome to the waiting request, once the batch is committed."""
        if self.future.done():
            return
        if self.error is not None:
            self.future.set_exception(self.error)
        else:
            self.future.set_result(self.result)


def _checkpoint_by_writer_queue(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


def make_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs.setdefault("pool_use_lifo", True)  # the warmest connection: cached pages
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_after_idle(engine)
    return engine


IDLE_PING_SECONDS = 5.0


def _ping_after_idle(engine: Engine) -> None:
    """Ping a pooled connection at checkout only if it sat idle for a while.

    A ping on every checkout (`pool_pre_ping`) is one more round trip per transaction, and
    round trips are what a redemption on PostgreSQL mostly waits on. A connection in steady
    use has just answered; one that idled (past a restart of the server, say) is pinged,
    and a dead one replaced before any request sees it. A connection that dies mid-use is
    dropped when its error shows it (SQLAlchemy for sessions, `_abandon` for lean work).
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_connection.rollback()
        except engine.dialect.loaded_dbapi.Error as dead:
            raise DisconnectionError("pooled connection found dead") from dead  # pool retries


class AnswerBound(Protocol):
    """A request whose answer must commit with its change (one with an Idempotency-Key).

    Set for the request by the idempotency middleware (`ANSWER_BOUND`). The request's first
    `Database.transaction()` calls `begin` on its session (to claim the key in that very
    transaction) and, instead of committing, leaves the transaction in `held`: the middleware
    stores the answer in it once the route has answered, and commits both at once.
    """

    held: HeldTransaction | None
    answered: bool  # once the answer is out, later transactions (background work) are free

    def begin(self, session: Session) -> None: ...


ANSWER_BOUND: ContextVar[AnswerBound | None] = ContextVar("o2oloop_answer_bound", default=None)


@contextmanager
def answer_not_bound() -> Iterator[None]:
    """Work in a request that commits as it goes, answer or not: for work too long for one
    transaction and safe to run again (a retry after a crash repeats it)."""
    token = ANSWER_BOUND.set(None)
    try:
        yield
    finally:
        ANSWER_BOUND.reset(token)


class HeldTransaction:
    """A unit of work left open after its `with` block, to be committed with the answer."""

    def __init__(self, session: Session, release: Callable[[], None]) -> None:
        self.session = session
        self._release = release

    def commit(self) -> None:
        try:
            self.session.commit()
        except BaseException:
            self.session.rollback()
            raise
        finally:
            self._end()

    def rollback(self) -> None:
        try:
            self.session.rollback()
        finally:
            self._end()

    def _end(self) -> None:
        try:
            self.session.close()
        finally:
            self._release()


class Database:
    """One engine and its session factory; passed to the app, the CLI and the tests."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Event name -> reactions run in the recording transaction (`events.record`): the
        # wiring installs them (`Wiring.install`); each write session sees them in its info.
        self.reactions: dict[str, list[Callable[[Session, Any], None]]] = {}
        self.sessions = sessionmaker(
            bind=engine, expire_on_commit=False, autoflush=True, info={"reactions": self.reactions}
        )
        # A read session's transaction is READ ONLY on PostgreSQL: the database itself
        # refuses a write in it, which is what lets `reading` end it with a COMMIT.
        self.read_sessions = sessionmaker(
            bind=engine.execution_options(sqlite_begin="DEFERRED", postgresql_readonly=True),
            expire_on_commit=False,
        )
        self.writers: WriterQueue | None = None
        path = engine.url.database if engine.dialect.name == "sqlite" else None
        if path and path != ":memory:" and not path.startswith("file:"):
            self.writers = WriterQueue(
                Path(f"{path}-writers.lock"), self._checkpoint, lambda: self.lean(write=True)
            )
            event.listen(engine, "connect", _checkpoint_by_writer_queue)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Database:
        return cls(make_engine(url, **kwargs))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error.

        In a request whose answer is bound to its change (`ANSWER_BOUND`), the commit waits
        for the answer (see `AnswerBound`); a second transaction in such a request is a
        savepoint of the first.
        """
        bound = ANSWER_BOUND.get()
        if bound is not None and not bound.answered:
            with self._answer_bound(bound) as session:
                yield session
            return
        if self.writers is None:
            with self._unit_of_work() as session:
                yield session
            return
        # A turn of its own: the thread that began the transaction may not be the one
        # that ends it (FastAPI runs a dependency's two halves in any pool thread).
        turn = self.writers.acquire_own()
        try:
            with self._unit_of_work() as session:
                yield session
        finally:
            self.writers.release_own(turn)

    @contextmanager
    def _answer_bound(self, bound: AnswerBound) -> Iterator[Session]:
        if bound.held is not None:
            session = bound.held.session
            with session.begin_nested():
                yield session
            return
        writers = self.writers
        turn = writers.acquire_own() if writers is not None else None

        def release() -> None:
            if writers is not None and turn is not None:
                writers.release_own(turn)

        session = self.sessions()
        try:
            bound.begin(session)
            yield session
            session.flush()
        except BaseException:
            HeldTransaction(session, release).rollback()
            raise
        bound.held = HeldTransaction(session, release)

    @contextmanager
    def _unit_of_work(self) -> Iterator[Session]:
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def lean(self, *, write: bool) -> Iterator[DriverTransaction]:
        """A transaction on a pooled DB-API connection, for `Prepared` statements only.

        A write commits on success and rolls back on any error; a read only reads (it ends
        with a COMMIT on PostgreSQL, where psycopg's ROLLBACK would forget the server-side
        prepared statements). On SQLite a write begins IMMEDIATE (it should hold the writers'
        turn) and a read begins deferred, so it never waits for the write lock. On PostgreSQL
        both run pipelined (`_pipelined`).
        """
        with self._lent() as connection:
            dialect = self.engine.dialect
            if dialect.name == "postgresql":
                with _pipelined(connection, dialect, write=write) as transaction:
                    yield transaction
                return
            if dialect.name == "sqlite":
                connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            transaction = DriverTransaction(connection, dialect)
            yield transaction
            if write:
                transaction.write_deferred()
                connection.commit()
            else:
                connection.rollback()

    @contextmanager
    def one_statement(self) -> Iterator[OneStatement]:
        """Reads and writes as two statements on a pooled PostgreSQL connection in
        autocommit mode (`combined.OneStatement`); the writes go, as one, on success."""
        with self._lent() as connection:
            connection.autocommit = True
            work = OneStatement(connection, self.engine.dialect)
            yield work
            work.finish()

    @contextmanager
    def _lent(self) -> Iterator[Any]:
        """A pooled DB-API connection, handed back as lent: on any error its work is undone
        (and a connection that died leaves the pool), and on PostgreSQL it goes back idle
        and out of autocommit mode."""
        pooled = self.engine.raw_connection()
        connection, dialect = pooled.driver_connection, self.engine.dialect
        try:
            yield connection
        except BaseException as error:
            _abandon(pooled, dialect, error)
            if isinstance(error, dialect.loaded_dbapi.Error):
                raise wrapped(dialect, error, None, None) from error
            raise
        finally:
            if dialect.name == "postgresql" and pooled.is_valid:
                _end_autocommit(connection)
            pooled.close()

    async def run_transaction(
        self, work: Callable[[DriverTransaction], Result], *, orm: bool = False
    ) -> Result:
        """`work` in one transaction, from async code, for the hottest routes.

        Lean (`lean`) unless `orm`, where the transaction is an ORM session's and `work` may
        use it (`DriverTransaction.session`). On SQLite it waits in this process's writer
        queue, then runs on the event loop while the turn is held: a few hundred microseconds
        of statements that wait on nobody, with no thread hand-off. Elsewhere it runs in the
        thread pool, so waiting on the database server never blocks the loop.
        """
        if self.writers is None:
            return await run_in_threadpool(self._run_orm if orm else self._run, work)
        if orm:
            return await self.writers.run_alone(lambda: self._run_orm(work))
        return await self.writers.run(work)

    async def run_reading(self, work: Callable[[DriverTransaction], Result]) -> Result:
        """`work` in one lean read-only transaction, from async code, for the hottest routes.

        SQLite readers wait on nobody (write-ahead log), so on SQLite it runs on the event
        loop; elsewhere in the thread pool.
        """
        if self.writers is None:
            return await run_in_threadpool(self._read, work)
        return self._read(work)

    async def run_checked(
        self,
        check: Callable[[DriverTransaction], Checked],
        write: Callable[[DriverTransaction, Checked], Result],
        *,
        orm: Callable[[Checked], bool],
        single: Callable[[Checked], bool] = lambda _: False,
    ) -> Result:
        """`check` in a lean read, then `write` of what it found in a transaction of its
        own, lean unless `orm(checked)`.

        On SQLite as `run_reading` then `run_transaction`. On PostgreSQL both in one
        hand-off to the thread pool, on one connection: the check's reads in one statement
        (`combined.OneStatement`: it takes no lock, and the write re-checks what can
        change) and, if `single(checked)`, the writes in one more; otherwise in a lean or
        ORM transaction. Elsewhere check and write share one lean transaction.
        """
        if self.writers is not None:
            checked = await self.run_reading(check)
            return await self.run_transaction(lambda tx: write(tx, checked), orm=orm(checked))

        return await run_in_threadpool(self._checked_together, check, write, orm, single)

    def _checked_together(
        self,
        check: Callable[[DriverTransaction], Checked],
        write: Callable[[DriverTransaction, Checked], Result],
        orm: Callable[[Checked], bool],
        single: Callable[[Checked], bool],
    ) -> Result:
        """Check and write on one connection (PostgreSQL) or in one lean transaction; work
        that needs the ORM writes in a transaction of its own after the check."""
        if self.dialect == "postgresql":
            with self.one_statement() as together:
                checked = check(together)
                if single(checked):
                    return write(together, checked)
        else:
            with self.lean(write=True) as transaction:
                checked = check(transaction)
                if not orm(checked):
                    return write(transaction, checked)
        run = self._run_orm if orm(checked) else self._run
        return run(lambda tx: write(tx, checked))

    def _read(self, work: Callable[[DriverTransaction], Result]) -> Result:
        with self.lean(write=False) as transaction:
            return work(transaction)

    def _run(self, work: Callable[[DriverTransaction], Result]) -> Result:
        with self.lean(write=True) as transaction:
            return work(transaction)

    def _run_orm(self, work: Callable[[DriverTransaction], Result]) -> Result:
        with self._unit_of_work() as session:
            return work(DriverTransaction.of_session(session))

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only unit of work: on SQLite it does not take the write lock.

        Closed, not rolled back: its transaction ends as the connection goes back to the
        pool, and what it loaded stays readable (a rollback would expire it). On PostgreSQL
        its transaction is READ ONLY, and a read that ends normally with nothing pending
        ends with a COMMIT (of reads, it changes nothing), as `lean` reads do: at a
        ROLLBACK psycopg forgets every statement it prepared on the server, so reads would
        be planned afresh every time.
        """
        session = self.read_sessions()
        try:
            yield session
            if self.dialect == "postgresql" and not (
                session.new or session.dirty or session.deleted
            ):
                session.commit()
        finally:
            session.close()

    def _checkpoint(self) -> None:
        connection = self.engine.raw_connection()  # no BEGIN: a checkpoint is no transaction
        try:
            connection.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            connection.close()

    def dispose(self) -> None:
        self.engine.dispose()
