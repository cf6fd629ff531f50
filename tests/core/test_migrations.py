"""Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import o2oloop.models  # noqa: F401
from o2oloop import migrations
from o2oloop.db import Base, Database


def _differences(db: Database) -> list:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def test_sqlite_migrations_match_models(tmp_path) -> None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'm.db'}")
    migrations.upgrade(db)
    assert _differences(db) == []
    migrations.upgrade(db)  # running again is a no-op
    db.dispose()


@pytest.mark.postgres
def test_postgres_migrations_match_models(postgres_available: None) -> None:
    from conftest import drop_postgres_database, fresh_postgres_database

    name = f"o2o_migrations_check_{uuid.uuid4().hex[:12]}"
    db = Database.from_url(fresh_postgres_database(name))
    try:
        migrations.upgrade(db)
        assert _differences(db) == []
    finally:
        db.dispose()
        drop_postgres_database(name)
