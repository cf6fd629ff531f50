"""The writer queue of a SQLite file: writers take turns by an flock, the async queue runs
transactions in batches, a wait longer than the timeout is an OperationalError, and the log
is checkpointed outside the turn. `run_reading` never queues. PostgreSQL has no queue."""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Integer, func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from o2oloop.customers import service as customers
from o2oloop.customers.models import Consumer
from o2oloop.db import Database, WriterQueue
from o2oloop.prepared import DriverTransaction, Prepared, driver

INCREMENT = text("UPDATE counter SET value = value + 1 WHERE id = 1")
VALUE = text("SELECT value FROM counter WHERE id = 1").columns(value=Integer)
PREPARED_INCREMENT, PREPARED_VALUE = Prepared(INCREMENT), Prepared(VALUE)
COUNT_CONSUMERS = Prepared(select(func.count()).select_from(Consumer))


def _counter_db(path: Path) -> Database:
    db = Database.from_url(f"sqlite:///{path}")
    with db.engine.begin() as connection:
        connection.execute(
            text("CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)")
        )
        connection.execute(text("INSERT INTO counter (id, value) VALUES (1, 0)"))
    return db


@pytest.fixture
def counter_db(tmp_path: Path) -> Iterator[Database]:
    """A SQLite file with one counter row at 0 (plain SQL, no migrations needed)."""
    db = _counter_db(tmp_path / "counter.db")
    yield db
    db.dispose()


def _value(db: Database) -> int:
    with db.reading() as session:
        return session.execute(VALUE).scalar_one()


def _increment(work: Session | DriverTransaction) -> int:
    """Add one and read the new value, in an ORM session or a lean transaction alike."""
    transaction = driver(work)
    transaction.execute(PREPARED_INCREMENT)
    return transaction.scalar(PREPARED_VALUE)


def _writers(db: Database) -> WriterQueue:
    assert db.writers is not None
    return db.writers


class TurnHolder:
    """A thread that takes the turn with `writers.acquire()` and gives it back on `give_back`."""

    def __init__(self, db: Database, log: list[str]) -> None:
        self.writers = _writers(db)
        self.log = log
        self.held = threading.Event()
        self.go = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.writers.acquire()
        self.held.set()
        self.go.wait(30)
        self.log.append("released")
        self.writers.release()

    def __enter__(self) -> TurnHolder:
        self.thread.start()
        assert self.held.wait(10)
        return self

    def give_back(self) -> None:
        self.go.set()
        self.thread.join(10)
        assert not self.thread.is_alive()

    def __exit__(self, *exc: object) -> None:
        self.give_back()


# ---- run_transaction: commit, rollback, batches ------------------------------------------------


def test_a_file_database_has_a_writer_queue_beside_it(counter_db: Database) -> None:
    writers = _writers(counter_db)
    assert writers.lock_file == Path(f"{counter_db.engine.url.database}-writers.lock")


def test_an_in_memory_database_has_no_queue() -> None:
    memory = Database.from_url("sqlite://")
    assert memory.writers is None  # nobody to take turns with
    with memory.reading() as session:  # and SQLite's own checkpoints stay on
        assert session.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == 1000
    memory.dispose()


def test_run_transaction_commits_and_returns_the_result(counter_db: Database) -> None:
    loop_thread: list[int] = []

    def work(session: DriverTransaction) -> int:
        loop_thread.append(threading.get_ident())
        return _increment(session)

    async def main() -> tuple[int, int]:
        return await counter_db.run_transaction(work), threading.get_ident()

    result, loop_ident = asyncio.run(main())
    assert result == 1
    assert _value(counter_db) == 1  # committed: a new session sees it
    assert loop_thread == [loop_ident]  # on SQLite the work runs on the event loop


def test_an_error_in_run_transaction_rolls_back_propagates_and_frees_the_turn(
    counter_db: Database,
) -> None:
    def failing(session: DriverTransaction) -> None:
        assert _increment(session) == 1  # written inside the transaction …
        raise ValueError("boom")

    async def main() -> int:
        with pytest.raises(ValueError, match="boom"):
            await counter_db.run_transaction(failing)
        return await counter_db.run_transaction(_increment)

    assert asyncio.run(main()) == 1  # … and rolled back: the next increment starts from 0
    _writers(counter_db).timeout = 2.0
    with counter_db.transaction() as session:  # the turn is free for threads too
        assert _increment(session) == 2
    assert _value(counter_db) == 2


def test_200_concurrent_transactions_each_take_effect_once_in_batches(
    counter_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Turns are counted where they end, at the flock's unlock."""
    writers = _writers(counter_db)
    items = 200
    batches: list[int] = []  # transactions run in each turn
    ran_in_turn = 0
    turn_held: list[bool] = []
    real_flock = fcntl.flock

    def counting_flock(fd: int, operation: int) -> None:
        nonlocal ran_in_turn
        if operation == fcntl.LOCK_UN:
            batches.append(ran_in_turn)
            ran_in_turn = 0
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", counting_flock)
    probe = os.open(writers.lock_file, os.O_RDWR | os.O_CREAT, 0o600)

    def work(session: DriverTransaction) -> int:
        nonlocal ran_in_turn
        ran_in_turn += 1
        try:  # somebody else's descriptor cannot take the turn now
            real_flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            real_flock(probe, fcntl.LOCK_UN)
            turn_held.append(False)
        except BlockingIOError:
            turn_held.append(True)
        return _increment(session)

    async def main() -> list[int]:
        return await asyncio.gather(*(counter_db.run_transaction(work) for _ in range(items)))

    try:
        results = asyncio.run(main())
    finally:
        os.close(probe)
    assert sorted(results) == list(range(1, items + 1))  # each saw its own increment
    assert _value(counter_db) == items
    assert turn_held == [True] * items
    assert sum(batches) == items
    assert len(batches) < items  # the turn changed hands once per batch, not per transaction
    assert max(batches) > 1
    assert max(batches) <= WriterQueue.BATCH


# ---- group commit --------------------------------------------------------------------------


def _gather(db: Database, *works: Callable[[DriverTransaction], object]) -> list[object]:
    """Queue every work at once (so they share a turn) and collect results or errors."""

    async def main() -> list[object]:
        return await asyncio.gather(
            *(db.run_transaction(work) for work in works), return_exceptions=True
        )

    return asyncio.run(main())


def test_a_failing_work_undoes_only_itself_and_its_batch_mates_are_kept(
    counter_db: Database,
) -> None:
    def failing(transaction: DriverTransaction) -> None:
        _increment(transaction)  # written inside its savepoint …
        raise ValueError("refused")

    outcomes = _gather(counter_db, _increment, failing, _increment, _increment)
    assert outcomes[0] == 1 and outcomes[2:] == [2, 3]  # … and undone: the next saw 2, not 3
    assert isinstance(outcomes[1], ValueError)
    assert _value(counter_db) == 3


DEFER_CHECKS = Prepared(text("PRAGMA defer_foreign_keys = ON"))
ORPHAN = Prepared(text("INSERT INTO counter_entries (counter_id) VALUES (42)"))


def test_a_failed_commit_fails_every_work_of_the_batch_and_keeps_none(
    counter_db: Database,
) -> None:
    """A foreign key checked only at commit (a deferred check) makes the batch's commit fail:
    the works that succeeded inside it get that error, none of their writes is stored, and
    the next batch goes on normally."""
    with counter_db.engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE counter_entries (id INTEGER PRIMARY KEY, "
                "counter_id INTEGER NOT NULL REFERENCES counter (id))"
            )
        )

    def orphan(transaction: DriverTransaction) -> str:
        transaction.execute(DEFER_CHECKS)
        transaction.execute(ORPHAN)
        return "inserted"

    outcomes = _gather(counter_db, _increment, orphan, _increment)
    assert all(isinstance(outcome, IntegrityError) for outcome in outcomes), outcomes
    assert _value(counter_db) == 0
    assert _gather(counter_db, _increment) == [1]


ABANDON = Prepared(text("ROLLBACK"))


def test_when_the_database_ends_the_batch_s_transaction_nothing_of_the_batch_is_kept(
    counter_db: Database,
) -> None:
    """As SQLite does on some I/O errors, the transaction ends in the middle of a batch: the
    works before it lose their writes, the works after it do not run outside a
    transaction, and every one of them is answered with an error."""

    def ended(transaction: DriverTransaction) -> None:
        transaction.execute(ABANDON)
        raise OSError("disk I/O error")

    outcomes = _gather(counter_db, _increment, ended, _increment, _increment)
    assert all(isinstance(outcome, Exception) for outcome in outcomes), outcomes
    assert _value(counter_db) == 0
    assert _gather(counter_db, _increment) == [1]


# ---- across processes ----------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from sqlalchemy import event, text
    from o2oloop.db import Database
    from o2oloop.prepared import Prepared

    path, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    db = Database.from_url(f"sqlite:///{path}")

    @event.listens_for(db.engine, "connect")
    def _no_busy_wait(dbapi_connection, _record):
        # No waiting in SQLite's busy handler: any collision of two writers is an error.
        dbapi_connection.execute("PRAGMA busy_timeout=0")

    INCREMENT = text("UPDATE counter SET value = value + 1 WHERE id = 1")
    with db.reading() as session:
        session.execute(text("SELECT 1"))
    print("ready", flush=True)
    sys.stdin.readline()
    if mode == "threads":
        for _ in range(n):
            with db.transaction() as session:
                session.execute(INCREMENT)
    else:
        async def main():
            await asyncio.gather(
                *(db.run_transaction(lambda tx: tx.execute(Prepared(INCREMENT))) for _ in range(n))
            )
        asyncio.run(main())
    db.dispose()
    print("done", flush=True)
    """
)


def test_processes_writing_one_row_take_turns_without_busy_errors(counter_db: Database) -> None:
    """Two processes of `db.transaction()` and one of `run_transaction`, all at once, with
    SQLite's busy timeout at 0: only the flock keeps them from colliding."""
    n = 300
    path = counter_db.engine.url.database
    assert path is not None
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, path, str(n), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for mode in ("threads", "threads", "async")
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready", child.stderr
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = [child.communicate(timeout=120) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
        assert "OperationalError" not in err
        assert out.strip() == "done"
    assert _value(counter_db) == 3 * n


# ---- the turn excludes -------------------------------------------------------------------------


def test_run_transaction_waits_while_a_thread_holds_the_turn(counter_db: Database) -> None:
    log: list[str] = []

    def work(session: DriverTransaction) -> int:
        log.append("work")
        return _increment(session)

    async def main() -> None:
        with TurnHolder(counter_db, log) as holder:
            task = asyncio.create_task(counter_db.run_transaction(work))
            await asyncio.sleep(0.3)
            assert not task.done()
            assert log == []  # the work has not started while the thread holds the turn
            holder.give_back()
            assert await task == 1
        assert log == ["released", "work"]

    asyncio.run(main())
    assert _value(counter_db) == 1


def test_a_queued_transaction_times_out_as_operational_error(counter_db: Database) -> None:
    writers = _writers(counter_db)
    writers.timeout = 0.2
    ran: list[str] = []

    def never(session: DriverTransaction) -> None:
        ran.append("never")
        _increment(session)

    async def main() -> None:
        with TurnHolder(counter_db, []) as holder:
            started = time.monotonic()
            with pytest.raises(OperationalError, match="no turn to write"):
                await counter_db.run_transaction(never)
            waited = time.monotonic() - started
            assert 0.15 <= waited < 5
            holder.give_back()
            assert await counter_db.run_transaction(_increment) == 1  # later work succeeds

    asyncio.run(main())
    assert ran == []  # the timed-out transaction was skipped when the turn came
    assert _value(counter_db) == 1


def test_a_thread_times_out_too_while_another_holds_the_turn(counter_db: Database) -> None:
    _writers(counter_db).timeout = 0.2
    with TurnHolder(counter_db, []):
        errors: list[BaseException] = []

        def write() -> None:
            try:
                with counter_db.transaction() as session:
                    _increment(session)
            except OperationalError as error:
                errors.append(error)

        thread = threading.Thread(target=write)
        thread.start()
        thread.join(10)
        assert len(errors) == 1
    with counter_db.transaction() as session:
        assert _increment(session) == 1


# ---- checkpoints -------------------------------------------------------------------------------


def test_connections_of_a_queued_database_do_not_checkpoint_on_commit(
    counter_db: Database,
) -> None:
    with counter_db.transaction() as session:
        assert session.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == 0
    with counter_db.reading() as session:
        assert session.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == 0


def _counting_checkpoints(db: Database, every: int) -> list[int]:
    """Set the queue to checkpoint every `every` turns; the thread of each checkpoint run."""
    writers = _writers(db)
    writers.CHECKPOINT_EVERY = every  # type: ignore[misc]
    calls: list[int] = []
    original = writers.checkpoint

    def counting() -> None:
        calls.append(threading.get_ident())
        original()

    writers.checkpoint = counting
    return calls


def _wal_bytes(db: Database) -> int:
    return Path(f"{db.engine.url.database}-wal").stat().st_size


def test_thread_turns_checkpoint_every_n_and_keep_the_log_short(tmp_path: Path) -> None:
    turns = 305
    checkpointed = _counter_db(tmp_path / "checkpointed.db")
    control = _counter_db(tmp_path / "control.db")
    calls = _counting_checkpoints(checkpointed, every=10)
    control_calls = _counting_checkpoints(control, every=10**9)
    try:
        for db in (checkpointed, control):
            for _ in range(turns):
                with db.transaction() as session:
                    _increment(session)
        assert len(calls) == turns // 10
        assert control_calls == []
        assert _value(checkpointed) == _value(control) == turns
        # Without checkpoints the log keeps every commit; with them the log starts over.
        assert _wal_bytes(control) > 5 * _wal_bytes(checkpointed)
    finally:
        checkpointed.dispose()
        control.dispose()


def test_queued_turns_checkpoint_every_n_off_the_event_loop(counter_db: Database) -> None:
    turns = 65
    calls = _counting_checkpoints(counter_db, every=10)

    async def main() -> int:
        for _ in range(turns):  # one transaction per turn
            await counter_db.run_transaction(_increment)
            others = asyncio.all_tasks() - {asyncio.current_task()}
            await asyncio.gather(*others)  # let a scheduled checkpoint finish
        return threading.get_ident()

    loop_ident = asyncio.run(main())
    assert len(calls) == turns // 10
    assert loop_ident not in calls  # the checkpoint does not stall the event loop
    assert _value(counter_db) == turns


# ---- run_reading -------------------------------------------------------------------------------


def test_run_reading_returns_the_result_without_taking_the_turn(counter_db: Database) -> None:
    """A thread holds the turn and SQLite's write lock with a write not yet committed: the
    read neither waits nor sees it (the queue's timeout is short, so a read that queued
    for the turn would fail, and one that wanted SQLite's write lock would wait in vain for
    the writer, which commits only after the read, and fail too)."""
    _writers(counter_db).timeout = 0.5
    with counter_db.transaction() as session:
        _increment(session)
    writing, go = threading.Event(), threading.Event()

    def writer() -> None:
        with counter_db.transaction() as session:
            _increment(session)
            writing.set()
            go.wait(30)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    assert writing.wait(10)

    def read(transaction: DriverTransaction) -> int:
        return transaction.scalar(PREPARED_VALUE)

    try:
        value = asyncio.run(counter_db.run_reading(read))
    finally:
        go.set()
        thread.join(10)
    assert value == 1  # the committed value, not the writer's pending 2
    assert asyncio.run(counter_db.run_reading(read)) == 2


# ---- PostgreSQL --------------------------------------------------------------------------------


def test_postgres_has_no_queue_and_runs_work_in_the_thread_pool(pg_db: Database) -> None:
    assert pg_db.writers is None
    threads: list[int] = []

    def sign_up(name: str) -> Callable[[DriverTransaction], str]:
        def work(transaction: DriverTransaction) -> str:
            threads.append(threading.get_ident())
            consumer, _ = customers.sign_up(transaction.session, display_name=name)
            return consumer.id

        return work

    def failing(transaction: DriverTransaction) -> None:
        customers.sign_up(transaction.session, display_name="rolled back")
        transaction.session.flush()
        raise ValueError("boom")

    def count(transaction: DriverTransaction) -> int:
        threads.append(threading.get_ident())
        return transaction.scalar(COUNT_CONSUMERS)

    async def main() -> tuple[list[str], int, int]:
        ids = await asyncio.gather(
            *(pg_db.run_transaction(sign_up(f"c{i}"), orm=True) for i in range(20))
        )
        with pytest.raises(ValueError, match="boom"):
            await pg_db.run_transaction(failing, orm=True)
        return list(ids), await pg_db.run_reading(count), threading.get_ident()

    ids, counted, loop_ident = asyncio.run(main())
    assert len(set(ids)) == 20
    assert counted == 20  # every sign-up committed, the failing one rolled back
    assert loop_ident not in threads
