"""Alembic environment: migrates the engine handed over by o2oloop.migrations.upgrade."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import o2oloop.models  # noqa: F401  (registers every table)
from o2oloop.db import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    engine = config.attributes.get("engine") or create_engine(
        config.get_main_option("sqlalchemy.url") or ""
    )
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run()
