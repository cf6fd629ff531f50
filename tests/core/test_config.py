"""Settings: production refuses default secrets; workers use the configured threads."""

from __future__ import annotations

from pathlib import Path

import pytest
from anyio import to_thread
from fastapi.testclient import TestClient

from o2oloop.api import create_app
from o2oloop.config import DEFAULT_SECRET, Settings
from o2oloop.db import Database


def test_production_refuses_the_development_secret() -> None:
    with pytest.raises(RuntimeError, match="O2O_SECRET_KEY"):
        Settings(env="production", secret_key=DEFAULT_SECRET).check_production()
    with pytest.raises(RuntimeError):
        Settings(env="production", secret_key="short").check_production()
    Settings(env="production", secret_key="s" * 40).check_production()


def test_development_allows_the_default_and_uses_sqlite(tmp_path) -> None:
    settings = Settings(env="development", data_dir=tmp_path)
    settings.check_production()
    assert settings.effective_database_url.startswith("sqlite:///")


def test_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O2O_DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("O2O_PORT", "9001")
    settings = Settings()
    assert settings.effective_database_url == "postgresql+psycopg://u@h/db"
    assert settings.port == 9001


def test_each_worker_runs_blocking_routes_on_the_configured_number_of_threads(
    sqlite_db: Database, tmp_path: Path
) -> None:
    settings = Settings(env="test", data_dir=tmp_path, secret_key="s" * 40, worker_threads=3)
    with TestClient(create_app(settings, sqlite_db)) as client:
        limiter = client.portal.call(to_thread.current_default_thread_limiter)
        assert limiter.total_tokens == 3
        assert client.get("/healthz").status_code == 200
