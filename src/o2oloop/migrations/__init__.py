"""Alembic migrations, run programmatically so a fresh install migrates itself."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from o2oloop.db import Database

HERE = Path(__file__).parent


def alembic_config(db: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", db.engine.url.render_as_string(hide_password=False))
    config.attributes["engine"] = db.engine
    return config


def upgrade(db: Database, revision: str = "heads") -> None:
    """Each domain keeps its own branch of revisions; "heads" applies them all."""
    command.upgrade(alembic_config(db), revision)
