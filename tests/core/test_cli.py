"""The command line: first run migrates, keys are created and revoked."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from o2oloop import config
from o2oloop.auth import service as keys
from o2oloop.cli import app
from o2oloop.db import Database


@pytest.fixture
def cli_env(tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("O2O_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("O2O_DATABASE_URL", raising=False)
    config.get_settings.cache_clear()
    yield tmp_path
    config.get_settings.cache_clear()


def test_keys_create_and_revoke(cli_env) -> None:
    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "--label", "ops"])
    assert created.exit_code == 0, created.output
    token = re.search(r"o2o_key_\S+", created.output).group(0)
    key_id = re.search(r"key_[0-9a-z]{26}", created.output).group(0)
    db = Database.from_url(f"sqlite:///{cli_env / 'o2oloop.db'}")
    with db.transaction() as session:
        assert keys.authenticate(session, token).role.value == "platform_admin"
    revoked = runner.invoke(app, ["keys", "revoke", key_id])
    assert revoked.exit_code == 0, revoked.output
    with db.transaction() as session, pytest.raises(Exception, match="revoked"):
        keys.authenticate(session, token)
    db.dispose()


def test_db_upgrade_creates_the_sqlite_file(cli_env) -> None:
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert (cli_env / "o2oloop.db").exists()
