"""Fixtures: a fresh database per test on SQLite and on PostgreSQL, a real HTTP server."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from factories import wired
from o2oloop import clock, migrations
from o2oloop.api import create_app
from o2oloop.config import Settings
from o2oloop.db import Base, Database

PG_URL = os.environ.get(
    "O2O_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
UNDER_CI = bool(os.environ.get("CI"))


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _postgres_reachable() -> str | None:
    """None when PostgreSQL answers, otherwise why not."""
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as error:  # any failure to connect means "not available"
        return f"{type(error).__name__}: {error}"


def fresh_postgres_database(name: str) -> str:
    """Drop and create a database next to the test database; returns its URL."""
    drop_postgres_database(name)
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_available() -> None:
    reason = _postgres_reachable()
    if reason is None:
        return
    if UNDER_CI:
        pytest.fail(f"PostgreSQL at {PG_URL} is required under CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {reason}")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once by Alembic; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "o2oloop.db"
    db = Database.from_url(f"sqlite:///{path}")
    migrations.upgrade(db)
    db.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


def drop_postgres_database(name: str) -> None:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def postgres_database(postgres_available: None) -> Iterator[Database]:
    """This worker's own PostgreSQL database, migrated by Alembic once.

    Named after this run too, so two runs on one machine never drop each other's database.
    """
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex
    name = f"o2o_test_{_worker()}_{run[:12]}"
    url = fresh_postgres_database(name)
    db = Database.from_url(url, pool_size=20, max_overflow=80)
    migrations.upgrade(db)
    yield wired(db)
    db.dispose()
    drop_postgres_database(name)


def _sqlite_db(template: Path, tmp_path: Path) -> Database:
    path = tmp_path / "o2oloop.db"
    shutil.copy(template, path)
    return wired(Database.from_url(f"sqlite:///{path}"))


def _clean_postgres(db: Database) -> Database:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return db


@pytest.fixture
def sqlite_db(sqlite_template: Path, tmp_path: Path) -> Iterator[Database]:
    db = _sqlite_db(sqlite_template, tmp_path)
    yield db
    db.dispose()


@pytest.fixture
def pg_db(postgres_database: Database) -> Database:
    return _clean_postgres(postgres_database)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Database:
    """A fresh, migrated database: every test using it runs on both backends."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_db")
    return request.getfixturevalue("pg_db")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(env="test", data_dir=tmp_path, secret_key="test-secret-" + "x" * 32)


@pytest.fixture
def frozen_clock() -> Iterator[clock.FrozenClock]:
    frozen = clock.FrozenClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
    with clock.using(frozen):
        yield frozen


class LiveServer:
    """uvicorn serving the app on a free loopback port, in a background thread."""

    def __init__(self, app: object) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


@pytest.fixture
def app(settings: Settings, db: Database):
    return create_app(settings, db)


@pytest.fixture
def server(app: object) -> Iterator[LiveServer]:
    with LiveServer(app) as live:
        yield live


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client talking to the real server over loopback."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
