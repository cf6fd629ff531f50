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


def test_codes_issue_writes_a_csv_of_verifiable_codes(cli_env) -> None:
    import csv

    from factories import make_offer, make_tenant
    from o2oloop.codes import codec
    from o2oloop.codes import service as codes

    db = Database.from_url(f"sqlite:///{cli_env / 'o2oloop.db'}")
    assert CliRunner().invoke(app, ["db", "upgrade"]).exit_code == 0
    offer_id = make_offer(db, make_tenant(db))
    out = cli_env / "campaign.csv"
    result = CliRunner().invoke(
        app, ["codes", "issue", "--offer", offer_id, "--count", "2500", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2500 == len({row["code"] for row in rows})
    key = codes.Keys.from_secret(config.get_settings().secret_key).code
    parsed = codec.parse(rows[1234]["qr_payload"], key)
    assert (parsed.kind, parsed.index) == ("batch", 1234)
    db.dispose()


def test_worker_once_runs_every_job(cli_env) -> None:
    assert CliRunner().invoke(app, ["db", "upgrade"]).exit_code == 0
    result = CliRunner().invoke(app, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "jobs done" in result.output  # tests/jobs/test_cli.py checks each job ran
    refunds = CliRunner().invoke(app, ["refunds", "run-expired"])
    assert refunds.exit_code == 0, refunds.output
    assert "0 expired vouchers refunded" in refunds.output
