"""Pairing a device with a terminal: once, within minutes, and revoked with the terminal."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from factories import PLATFORM, bearer, make_tenant
from o2oloop.auth import service as keys
from o2oloop.auth.models import Role
from o2oloop.db import Database
from o2oloop.errors import Unauthorized
from o2oloop.merchants import service as merchants
from o2oloop.terminal import pairing

SECRET = "test-secret-" + "x" * 32


def _start(db: Database, tenant) -> pairing.Pairing:
    with db.transaction() as session:
        admin = keys.authenticate(session, tenant.admin_key)
        return pairing.start(
            session,
            principal=admin,
            merchant_id=tenant.merchant_id,
            terminal_id=tenant.terminal_id,
            secret_key=SECRET,
        )


def _complete(db: Database, code: str) -> pairing.Paired:
    with db.transaction() as session:
        return pairing.complete(session, code=code, secret_key=SECRET, device="test phone")


def test_a_code_pairs_one_device_as_that_terminal(db: Database) -> None:
    tenant = make_tenant(db)
    made = _start(db, tenant)
    assert len(made.code) == 9 and made.code[4] == "-"
    paired = _complete(db, made.code.lower().replace("-", " "))  # typed loosely
    with db.transaction() as session:
        device = keys.authenticate(session, paired.token)
    assert device.role is Role.TERMINAL and device.terminal_id == tenant.terminal_id
    assert device.store_id == tenant.store_id and device.merchant_id == tenant.merchant_id


def test_a_code_works_once_and_not_after_ten_minutes(db: Database, frozen_clock) -> None:
    tenant = make_tenant(db)
    used, late = _start(db, tenant), _start(db, tenant)
    _complete(db, used.code)
    with pytest.raises(pairing.PairingRefused):
        _complete(db, used.code)
    frozen_clock.advance(pairing.LIFETIME + timedelta(seconds=1))
    with pytest.raises(pairing.PairingRefused):
        _complete(db, late.code)
    with pytest.raises(pairing.PairingRefused):
        _complete(db, "0000-0000")


def test_two_devices_racing_for_one_code_pair_only_one(pg_db: Database) -> None:
    tenant = make_tenant(pg_db)
    made = _start(pg_db, tenant)
    results: list[str] = []
    barrier = threading.Barrier(4)

    def attempt() -> None:
        barrier.wait()
        try:
            _complete(pg_db, made.code)
            results.append("paired")
        except pairing.PairingRefused:
            results.append("refused")
        except Exception as other:  # a serialisation failure counts as refused too
            results.append(type(other).__name__)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("paired") == 1


def test_deactivating_the_terminal_signs_the_device_out(db: Database) -> None:
    tenant = make_tenant(db)
    paired = _complete(db, _start(db, tenant).code)
    with db.transaction() as session:
        merchants.deactivate_terminal(
            session, principal=PLATFORM, merchant_id=tenant.merchant_id,
            terminal_id=tenant.terminal_id,
        )  # fmt: skip
    with db.transaction() as session, pytest.raises(Unauthorized):
        keys.authenticate(session, paired.token)
    made_for_inactive = None
    with pytest.raises(Exception, match="deactivated"):
        made_for_inactive = _start(db, tenant)
    assert made_for_inactive is None


def test_pairing_over_http(http, db: Database) -> None:
    tenant, other = make_tenant(db), make_tenant(db)
    path = f"/v1/merchants/{tenant.merchant_id}/terminals/{tenant.terminal_id}/pairings"
    assert http.post(path, headers=other.admin).status_code == 404
    assert http.post(path, headers=tenant.staff).status_code == 403
    made = http.post(path, headers=tenant.admin)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["pair_url"].endswith(f"/terminal/pair?code={body['code']}")
    paired = http.post("/v1/terminal/pair", json={"code": body["code"]})
    assert paired.status_code == 201, paired.text
    me = http.get("/v1/terminal/me", headers=bearer(paired.json()["token"]))
    assert me.status_code == 200 and me.json()["terminal"]["id"] == tenant.terminal_id
    again = http.post("/v1/terminal/pair", json={"code": body["code"]})
    assert again.status_code == 422 and again.json()["type"].endswith("pairing-refused")


def test_the_console_shows_a_pairing_code_that_pairs_the_counter(http, db: Database) -> None:
    import re

    from web_kit import make_person, sign_in
    from web_kit import submit as submit_form

    tenant, other = make_tenant(db), make_tenant(db)
    sign_in(http, make_person(db, tenant))
    listed = http.get("/console/terminals")
    assert listed.status_code == 200 and "Counter" in listed.text
    shown = submit_form(
        http, "/console/terminals", f"/console/terminals/{tenant.terminal_id}/pairing", {}
    )
    assert shown.status_code == 200 and "data:image/svg+xml;base64," in shown.text
    code = re.search(r"data-pairing-code>([0-9A-Z]{4}-[0-9A-Z]{4})<", shown.text).group(1)
    foreign = submit_form(
        http, "/console/terminals", f"/console/terminals/{other.terminal_id}/pairing", {}
    )
    assert foreign.status_code == 404  # another merchant's terminal, by URL
    with db.transaction() as session:
        device = pairing.complete(session, code=code, secret_key=SECRET)
    assert device.terminal.id == tenant.terminal_id
    assert '<td class="num">1</td>' in http.get("/console/terminals").text
