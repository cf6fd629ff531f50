"""Sign-in security over real HTTP on SQLite and PostgreSQL: CSRF, session fixation,
rate limit, expiry and redirect back, sign-out, password reset by emailed link."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from factories import make_tenant
from o2oloop import clock
from o2oloop.db import Database
from o2oloop.people import service as people
from o2oloop.people.models import SignInEvent, WebSession
from web_kit import PASSWORD, csrf_of, make_person, sign_in, submit


def test_sign_in_opens_the_console_and_sign_out_closes_it(db: Database, http: httpx.Client) -> None:
    email = make_person(db, make_tenant(db))
    assert http.get("/console").status_code == 303

    answer = sign_in(http, email)

    assert answer.status_code == 303 and answer.headers["location"] == "/console"
    cookie = answer.headers["set-cookie"]
    assert "o2o_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert http.get("/console").status_code == 200
    submit(http, "/console", "/signout", {})
    assert http.get("/console").status_code == 303
    with db.reading() as session:
        outcomes = [
            e.outcome for e in session.scalars(select(SignInEvent).order_by(SignInEvent.at))
        ]
    assert outcomes == ["signed_in", "signed_out"]


def test_a_post_without_the_csrf_token_is_refused(db: Database, http: httpx.Client) -> None:
    email = make_person(db, make_tenant(db))
    http.get("/signin")

    refused = http.post("/signin", data={"email": email, "password": PASSWORD})

    assert refused.status_code == 403
    assert "o2o_session" not in http.cookies
    sign_in(http, email)
    for token in ("", "0" * 64):
        answer = http.post("/signout", data={"csrf_token": token} if token else {})
        assert answer.status_code == 403
    assert http.get("/console").status_code == 200  # still signed in: sign-out did not run


def test_a_csrf_token_from_another_browser_is_refused(
    db: Database, http: httpx.Client, server
) -> None:
    email = make_person(db, make_tenant(db))
    sign_in(http, email)
    with httpx.Client(base_url=server.url, timeout=30) as other:
        sign_in(other, email)
        foreign_token = csrf_of(other.get("/console").text)

    assert http.post("/signout", data={"csrf_token": foreign_token}).status_code == 403


def test_signing_in_never_keeps_a_session_id_the_browser_brought(
    db: Database, http: httpx.Client, server
) -> None:
    tenant = make_tenant(db)
    victim = make_person(db, tenant)
    attacker = make_person(db, tenant, email="attacker@example.com")
    with httpx.Client(base_url=server.url, timeout=30) as other:
        sign_in(other, attacker)
        attackers_session = other.cookies["o2o_session"]
    http.cookies.set("o2o_session", "planted-by-attacker", domain="127.0.0.1")
    http.get("/signin")
    visitor = http.cookies["o2o_visitor"]

    answer = sign_in(http, victim)

    new = answer.cookies["o2o_session"]
    assert new not in ("planted-by-attacker", visitor, attackers_session)
    # Planting the attacker's own session makes the victim the attacker, never the reverse:
    # the attacker's session is still the attacker's.
    with db.reading() as session:
        found = people.session_person(session, token=attackers_session)
        assert found is not None and found[1].email == attacker
        mine = people.session_person(session, token=new)
        assert mine is not None and mine[1].email == victim
        assert session.get(WebSession, "planted-by-attacker") is None


def test_signing_in_again_ends_the_session_the_browser_had(
    db: Database, http: httpx.Client
) -> None:
    email = make_person(db, make_tenant(db))
    sign_in(http, email)
    first = http.cookies["o2o_session"]
    http.cookies.clear()
    http.cookies.set("o2o_session", first, domain="127.0.0.1")

    token = csrf_of(http.get("/console").text)  # the sign-in page sends signed-in people on
    http.post("/signin", data={"email": email, "password": PASSWORD, "csrf_token": token})

    assert http.cookies["o2o_session"] != first
    with db.reading() as session:
        assert people.session_person(session, token=first) is None


def test_too_many_failures_lock_the_email_even_with_the_right_password(
    db: Database, http: httpx.Client
) -> None:
    email = make_person(db, make_tenant(db))
    for _ in range(people.FAILURES_PER_EMAIL):
        wrong = sign_in(http, email, "not the password at all")
        assert wrong.status_code == 422
        assert "The email or password is not right." in wrong.text

    locked = sign_in(http, email)

    assert locked.status_code == 429
    assert "Too many attempts" in locked.text
    assert "o2o_session" not in http.cookies


def test_an_unknown_email_is_answered_like_a_wrong_password(
    db: Database, http: httpx.Client
) -> None:
    make_person(db, make_tenant(db))
    answer = sign_in(http, "nobody@example.com", "whatever it is")
    assert answer.status_code == 422
    assert "The email or password is not right." in answer.text
    assert 'value="nobody@example.com"' in answer.text  # the input is kept


def test_an_expired_session_goes_to_sign_in_and_back(db: Database, http: httpx.Client) -> None:
    email = make_person(db, make_tenant(db))
    frozen = clock.FrozenClock(clock.now())
    with clock.using(frozen):
        sign_in(http, email)
        assert http.get("/console").status_code == 200
        frozen.advance(people.SESSION_IDLE + timedelta(minutes=1))

        away = http.get("/console?period=week")

        assert away.status_code == 303
        assert away.headers["location"] == "/signin?next=/console%3Fperiod%3Dweek"
        form = http.get(away.headers["location"]).text
        assert 'name="next" value="/console?period=week"' in form
        back = submit(
            http,
            away.headers["location"],
            "/signin",
            {"email": email, "password": PASSWORD, "next": "/console?period=week"},
        )
        assert back.headers["location"] == "/console?period=week"


def test_sign_in_never_redirects_to_another_site(db: Database, http: httpx.Client) -> None:
    email = make_person(db, make_tenant(db))
    answer = submit(
        http,
        "/signin",
        "/signin",
        {"email": email, "password": PASSWORD, "next": "//evil.example/steal"},
    )
    assert answer.headers["location"] == "/console"


def test_password_reset_by_the_emailed_link(db: Database, http: httpx.Client, app) -> None:
    email = make_person(db, make_tenant(db))
    sign_in(http, email)
    old_session = http.cookies["o2o_session"]
    http.cookies.clear()

    sent = submit(http, "/reset", "/reset", {"email": email})
    unknown = submit(http, "/reset", "/reset", {"email": "stranger@example.com"})

    assert sent.status_code == unknown.status_code == 200
    assert "Check your email" in sent.text and "Check your email" in unknown.text
    (message,) = app.state.wiring.email.sent
    assert message["To"] == email
    link = re.search(r"https?://\S+/reset/(\S+)", message.get_content())
    assert link
    path = f"/reset/{link.group(1)}"
    weak = submit(http, path, path, {"password": "password123", "password_again": "password123"})
    assert weak.status_code == 422 and "too common" in weak.text
    new_password = "amber violin harbour seventeen"
    done = submit(http, path, path, {"password": new_password, "password_again": new_password})
    assert done.status_code == 303
    assert http.get(path).status_code == 410  # single use
    assert sign_in(http, email, new_password).status_code == 303
    with db.reading() as session:
        assert people.session_person(session, token=old_session) is None


@pytest.mark.parametrize(
    ("password", "why"),
    [("short", "at least 10"), ("password1234", "too common"), ("qwertyuiop", "too common")],
)
def test_short_and_common_passwords_are_refused(password: str, why: str) -> None:
    from o2oloop.people.passwords import password_problem

    problem = password_problem(password)
    assert problem is not None and why in problem
    assert password_problem("amber violin harbour seventeen") is None
