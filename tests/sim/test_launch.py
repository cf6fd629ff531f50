"""Building the demo city behind the server: logins first, progress in a file and a page."""

from __future__ import annotations

import json

import httpx
import pytest
from typer.testing import CliRunner

from conftest import LiveServer
from o2oloop import config
from o2oloop.api import create_app
from o2oloop.cli import app
from o2oloop.db import Database
from o2oloop.sim import progress


@pytest.fixture
def cli_env(tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("O2O_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("O2O_DATABASE_URL", raising=False)
    config.get_settings.cache_clear()
    yield tmp_path
    config.get_settings.cache_clear()


def test_demo_behind_a_server_reports_progress_and_keeps_its_logins(cli_env) -> None:
    path = progress.path_in(cli_env)
    result = CliRunner().invoke(
        app,
        [
            "demo",
            "--consumers",
            "120",
            "--merchants",
            "3",
            "--days",
            "20",
            "--progress-file",
            str(path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "demo city: " in result.output and "100%" in result.output
    assert "o2o_key_" not in result.output  # `up` prints the logins, once
    state = progress.read(path)
    assert state is not None and state["state"] == "ready" and progress.percent(state) == 100
    assert state["done"] == state["total"] > 0
    keys = json.loads((cli_env / "keys.json").read_text())
    assert {"platform_admin", "merchant_admin", "terminal", "consumer"} <= set(keys)

    settings = config.get_settings()
    db = Database.from_url(settings.effective_database_url)
    with (
        LiveServer(create_app(settings, db)) as live,
        httpx.Client(base_url=live.url, timeout=60) as client,
    ):
        page = client.get("/demo-city")
        assert page.status_code == 200 and "100%" in page.text
        assert 'http-equiv="refresh"' not in page.text  # done: the page stops refreshing
        assert client.get("/demo-city.json").json()["state"] == "ready"
    db.dispose()


def test_the_progress_page_refreshes_while_the_city_builds(settings, sqlite_db) -> None:
    path = progress.path_in(settings.data_dir)
    progress.write(path, state="logins_ready", done=30, total=60)  # this process: alive
    with (
        LiveServer(create_app(settings, sqlite_db)) as live,
        httpx.Client(base_url=live.url, timeout=60) as client,
    ):
        page = client.get("/demo-city")
    assert "45%" in page.text and 'http-equiv="refresh"' in page.text
    assert "Simulating 30 of 60 visits" in page.text


def test_a_stopped_city_says_so(settings, sqlite_db) -> None:
    path = progress.path_in(settings.data_dir)
    progress.write(path, state="logins_ready", done=30, total=60)
    found = progress.read(path)
    assert found is not None
    found["pid"] = 2**22 + 12345  # no such process
    path.write_text(json.dumps(found))
    with (
        LiveServer(create_app(settings, sqlite_db)) as live,
        httpx.Client(base_url=live.url, timeout=60) as client,
    ):
        page = client.get("/demo-city")
    assert "stopped before it was complete" in page.text
    assert 'http-equiv="refresh"' not in page.text


def test_demo_refuses_a_database_that_holds_merchants(cli_env) -> None:
    """One seed makes one set of ids, so a second city would collide with the first."""
    from factories import make_tenant

    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    db = Database.from_url(f"sqlite:///{cli_env / 'o2oloop.db'}")
    make_tenant(db)
    db.dispose()
    result = runner.invoke(app, ["demo", "--consumers", "50", "--merchants", "2", "--days", "7"])
    assert result.exit_code == 2
    assert "new database" in result.output
