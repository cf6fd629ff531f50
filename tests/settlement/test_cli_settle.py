"""`o2oloop settle` and `o2oloop payments deliver` from the command line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from factories import make_consumer, make_tenant
from money_kit import give_program, top_up
from o2oloop import config, migrations
from o2oloop.cli import app
from o2oloop.db import Database
from o2oloop.settlement.models import SettlementBatch, SettlementStatus
from o2oloop.stored_value import service as stored_value


@pytest.fixture
def cli_db(tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("O2O_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("O2O_DATABASE_URL", raising=False)
    config.get_settings.cache_clear()
    db = Database.from_url(f"sqlite:///{tmp_path / 'o2oloop.db'}")
    migrations.upgrade(db)
    yield db
    db.dispose()
    config.get_settings.cache_clear()


def test_settle_and_deliver_from_the_command_line(cli_db: Database, tmp_path) -> None:
    runner = CliRunner()
    tenant = make_tenant(cli_db)
    consumer_id, _ = make_consumer(cli_db)
    give_program(cli_db, tenant.merchant_id, [])
    top_up(cli_db, consumer_id=consumer_id, merchant_id=tenant.merchant_id, amount=10000)
    delivered = runner.invoke(app, ["payments", "deliver"])
    assert delivered.exit_code == 0, delivered.output
    assert "1 events delivered" in delivered.output
    with cli_db.transaction() as session:
        stored_value.spend(
            session,
            merchant_id=tenant.merchant_id,
            consumer_id=consumer_id,
            amount=4000,
            reference="x",
        )
    assert runner.invoke(app, ["settle", "--cutoff", "2020-01-01"]).exit_code != 0  # no offset
    settled = runner.invoke(app, ["settle", "--statements", str(tmp_path / "statements")])
    assert settled.exit_code == 0, settled.output
    assert "1 payouts requested" in settled.output
    statements = list((tmp_path / "statements").glob("stl_*.csv"))
    assert len(statements) == 1 and "stored_value_spend" in statements[0].read_text()
    assert runner.invoke(app, ["payments", "deliver"]).exit_code == 0
    with cli_db.transaction() as session:
        batch = session.query(SettlementBatch).one()
        assert (batch.status, batch.payout_amount) == (SettlementStatus.PAID, 3800)
