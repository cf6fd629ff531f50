"""The cashier's page over real HTTP: pair, check, accept once, undo, pay, spend."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import func, select

from factories import PLATFORM, consumer_principal, make_consumer, make_offer, make_tenant
from money_kit import deliver, give_program, top_up
from o2oloop.codes import codec, qr
from o2oloop.codes import service as codes
from o2oloop.codes.models import Code, CodeState, Redemption, RedemptionState
from o2oloop.customers import phones
from o2oloop.customers import service as customers
from o2oloop.customers.models import Membership
from o2oloop.db import Database
from o2oloop.merchants import service as merchants
from o2oloop.terminal import pairing

SECRET = "test-secret-" + "x" * 32  # the `settings` fixture's
PHONE = "13912345678"


def field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} in the page"
    return found.group(1)


def paired(http: httpx.Client, db: Database, tenant) -> httpx.Client:
    with db.transaction() as session:
        made = pairing.start(
            session, principal=PLATFORM, merchant_id=tenant.merchant_id,
            terminal_id=tenant.terminal_id, secret_key=SECRET,
        )  # fmt: skip
    page = http.get("/terminal/pair", params={"code": made.code})
    assert made.code in page.text
    answer = http.post(
        "/terminal/pair", data={"code": made.code, "csrf_token": field(page.text, "csrf_token")}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/terminal"
    assert "httponly" in answer.headers["set-cookie"].lower()
    assert "samesite=strict" in answer.headers["set-cookie"].lower()
    return http


def claimed_code(db: Database, tenant, **offer) -> str:
    offer_id = make_offer(db, tenant, **offer)
    consumer_id, _ = make_consumer(db)
    keys = codes.Keys.from_secret(SECRET)
    with db.transaction() as session:
        code = codes.claim(
            session, principal=consumer_principal(consumer_id), offer_id=offer_id, keys=keys
        )
        return keys.code_text(code.id)


def submit(http: httpx.Client, page: str, action: str, **values: str) -> httpx.Response:
    """Send the form of `page` that posts to `action`, with its own hidden fields."""
    start = page.index(f'action="{action}"')
    form = page[start : page.index("</form>", start)]
    hidden = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form))
    return http.post(action, data={**hidden, **values})


def refusal(html: str) -> str:
    """The verdict box the cashier reads."""
    start = html.index('id="refusal"')
    return html[start : html.index("</div>", start)]


def desk(http: httpx.Client) -> str:
    page = http.get("/terminal")
    assert page.status_code == 200, page.text
    return page.text


def test_an_unpaired_device_is_sent_to_pairing(http: httpx.Client) -> None:
    answer = http.get("/terminal")
    assert answer.status_code == 303 and answer.headers["location"] == "/terminal/pair"


def test_a_wrong_pairing_code_is_refused_beside_the_field(http: httpx.Client) -> None:
    page = http.get("/terminal/pair")
    answer = http.post(
        "/terminal/pair", data={"code": "WXYZ-1234", "csrf_token": field(page.text, "csrf_token")}
    )
    assert answer.status_code == 422 and "not valid" in answer.text
    assert 'value="WXYZ-1234"' in answer.text  # what was typed is kept


def test_without_the_csrf_token_nothing_happens(http: httpx.Client, db: Database) -> None:
    tenant = make_tenant(db)
    paired(http, db, tenant)
    code = claimed_code(db, tenant)
    answer = http.post("/terminal/accept", data={"code": code, "form_key": "k1"})
    assert answer.status_code == 403
    with db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Redemption)) == 0


def test_check_shows_what_to_give_then_accept_redeems_once(http: httpx.Client, db: Database):
    tenant = make_tenant(db)
    paired(http, db, tenant)
    code = claimed_code(db, tenant, min_spend=5000)
    page = desk(http)
    assert "Redeem a code" in page and "check-character.js" in page
    preview = submit(http, page, "/terminal/check", code=code.lower(), bill="128")
    assert preview.status_code == 200, preview.text
    assert "Valid code" in preview.text and "Amount due" in preview.text
    assert "118.00" in preview.text  # 128 less 10 off
    with db.reading() as session:  # checking changed nothing
        assert session.scalar(select(func.count()).select_from(Redemption)) == 0
    first = submit(http, preview.text, "/terminal/accept")
    again = submit(http, preview.text, "/terminal/accept")  # the cashier pressed twice
    assert first.status_code == again.status_code == 200
    assert "Redeemed" in first.text and first.text == again.text
    with db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Redemption)) == 1


def test_refusals_are_plain_for_the_cashier(http: httpx.Client, db: Database) -> None:
    tenant = make_tenant(db)
    paired(http, db, tenant)
    code = claimed_code(db, tenant, min_spend=20000)
    compact = codec.normalise(code)
    # Two neighbouring characters swapped; they must differ, or the "typo" is the code itself.
    at = next(i for i in range(5, len(compact) - 1) if compact[i] != compact[i + 1])
    swapped = compact[:at] + compact[at + 1] + compact[at] + compact[at + 2 :]
    typo = submit(http, desk(http), "/terminal/check", code=swapped)
    assert typo.status_code == 422 and "has a typo" in refusal(typo.text)
    assert f'value="{swapped}"' in typo.text  # kept for correcting
    other = claimed_code(db, make_tenant(db))  # a real code of another merchant
    foreign = submit(http, desk(http), "/terminal/check", code=other)
    assert foreign.status_code == 422
    assert "cannot be redeemed here" in refusal(foreign.text)
    assert "typo" not in refusal(foreign.text)
    short = submit(http, desk(http), "/terminal/check", code=code, bill="50")
    assert short.status_code == 422 and "Do not accept" in refusal(short.text)
    assert "minimum" in refusal(short.text).lower()


def test_a_photo_of_the_qr_is_decoded_and_checked(http: httpx.Client, db: Database) -> None:
    tenant = make_tenant(db)
    paired(http, db, tenant)
    code = claimed_code(db, tenant)
    page = desk(http)
    start = page.index('action="/terminal/check"')
    hidden = dict(
        re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page[start : start + 800])
    )
    photo = qr.qr_png(codec.qr_payload(code))
    answer = http.post(
        "/terminal/check", data=hidden, files={"photo": ("screen.png", photo, "image/png")}
    )
    assert answer.status_code == 200 and "Valid code" in answer.text, answer.text
    blank = http.post(
        "/terminal/check", data=hidden, files={"photo": ("x.png", qr.qr_png("hello"), "image/png")}
    )
    assert blank.status_code == 422  # a QR that is no code of ours: refused like any other


def test_undo_within_the_grace_period(http: httpx.Client, db: Database) -> None:
    tenant = make_tenant(db)
    paired(http, db, tenant)
    code = claimed_code(db, tenant)
    preview = submit(http, desk(http), "/terminal/check", code=code)
    accepted = submit(http, preview.text, "/terminal/accept")
    undone = submit(http, accepted.text, "/terminal/undo")
    assert undone.status_code == 200 and "Undone" in undone.text
    with db.reading() as session:
        assert session.scalar(select(Redemption.state)) is RedemptionState.UNDONE
        assert session.scalar(select(Code.state)) is CodeState.ACTIVE


def test_a_payment_with_a_phone_asks_the_consent_question(http: httpx.Client, db: Database):
    tenant = make_tenant(db)
    paired(http, db, tenant)
    code = claimed_code(db, tenant)
    preview = submit(http, desk(http), "/terminal/check", code=code, bill="88")
    accepted = submit(http, preview.text, "/terminal/accept")
    assert "May Merchant" in accepted.text  # the question to read out, with the shop's name
    unanswered = submit(http, accepted.text, "/terminal/payment", phone=PHONE, amount="78.00")
    assert unanswered.status_code == 422 and "tick their answer" in unanswered.text
    assert f'value="{PHONE}"' in unanswered.text and 'value="78.00"' in unanswered.text
    assert 'name="redemption_id"' in unanswered.text  # still tied to the redemption
    recorded = submit(
        http, unanswered.text, "/terminal/payment", phone=PHONE, amount="78.00", consent="yes"
    )
    assert recorded.status_code == 200 and "Payment of" in recorded.text, recorded.text
    assert "A new member" in recorded.text
    with db.reading() as session:
        member = session.scalar(
            select(Membership).where(Membership.merchant_id == tenant.merchant_id)
        )
        assert member is not None and member.marketing_consent and member.visit_count == 1


def test_stored_value_is_spent_by_phone(http: httpx.Client, db: Database) -> None:
    tenant = make_tenant(db)
    paired(http, db, tenant)
    e164 = phones.normalise(PHONE, "CN")
    with db.transaction() as session:
        consumer, _ = customers.consumer_by_phone(
            session, phone_hash=phones.phone_hash(e164, SECRET)
        )
        consumer_id = consumer.id
    give_program(db, tenant.merchant_id)
    top_up(db, consumer_id=consumer_id, merchant_id=tenant.merchant_id, amount=50000)
    deliver(db)
    spent = submit(http, desk(http), "/terminal/spend", phone=PHONE, amount="120")
    assert spent.status_code == 200 and "Balance left" in spent.text, spent.text
    assert "430.00" in spent.text  # 500 + 50 bonus - 120
    too_much = submit(http, desk(http), "/terminal/spend", phone=PHONE, amount="1000")
    assert too_much.status_code == 422 and "not enough" in too_much.text


def test_a_deactivated_terminal_signs_the_device_out(http: httpx.Client, db: Database) -> None:
    tenant = make_tenant(db)
    paired(http, db, tenant)
    desk(http)
    with db.transaction() as session:
        merchants.deactivate_terminal(
            session, principal=PLATFORM, merchant_id=tenant.merchant_id,
            terminal_id=tenant.terminal_id,
        )  # fmt: skip
    answer = http.get("/terminal")
    assert answer.status_code == 303 and answer.headers["location"] == "/terminal/pair"


def test_the_check_character_rule_comes_from_the_codec(http: httpx.Client) -> None:
    import json

    script = http.get("/terminal/check-character.js")
    assert script.status_code == 200
    rule = json.loads(script.text.removeprefix("window.O2O_CODE = ").rstrip(";\n"))
    assert rule["alphabet"] == codec.ALPHABET and rule["base"] == codec.BASE
    assert rule["length"] == codec.CODE_LENGTH and rule["lookalikes"]["O"] == "0"
