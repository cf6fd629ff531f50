"""Settings: production refuses default secrets."""

from __future__ import annotations

import pytest

from o2oloop.config import DEFAULT_SECRET, Settings


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
