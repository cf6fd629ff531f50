"""Webhook fixtures: settings that let deliveries reach loopback receivers quickly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from o2oloop.config import Settings
from o2oloop.db import Database
from o2oloop.webhooks.dispatch import Dispatcher


@pytest.fixture
def hook_settings(tmp_path: Path) -> Settings:
    """Development (http allowed), loopback allowed, and a schedule of milliseconds."""
    return Settings(
        env="development",
        data_dir=tmp_path,
        secret_key="test-secret-" + "x" * 32,
        webhooks_allow_private=True,
        webhooks_retry_schedule=[0, 0.05, 0.05, 0.05],
        webhooks_retry_jitter=0,
        webhooks_timeout_seconds=2,
        webhooks_lease_seconds=30,
    )


@pytest.fixture
def dispatcher(db: Database, hook_settings: Settings) -> Iterator[Dispatcher]:
    dispatcher = Dispatcher(db, hook_settings, concurrency=4)
    yield dispatcher
    dispatcher.close()
