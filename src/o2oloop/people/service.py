"""Sign-in for people: accounts, server-side sessions, rate limits, resets and the audit trail.

The entry point owns the transaction. A refused sign-in is an answer, not an exception, so
the failure it records (the rate limit's memory) commits with it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal, require_merchant_admin, require_platform
from o2oloop.db import new_id
from o2oloop.errors import Conflict, InvalidInput, NotFound
from o2oloop.merchants.models import Merchant, Staff
from o2oloop.people import passwords
from o2oloop.people.models import PasswordReset, Person, SignInEvent, WebSession

SESSION_IDLE = timedelta(hours=12)
SESSION_MAX = timedelta(days=7)
TOUCH_EVERY = timedelta(minutes=5)
RESET_VALID = timedelta(hours=1)
FAILURE_WINDOW = timedelta(minutes=15)
FAILURES_PER_EMAIL = 5
FAILURES_PER_ADDRESS = 30
PERSON_ROLES = (Role.PLATFORM_ADMIN, Role.MERCHANT_ADMIN, Role.MERCHANT_STAFF)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_email(email: str) -> str:
    return email.strip().lower()


def email_problem(email: str) -> str | None:
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or len(email) > 254 or " " in email:
        return "enter an email address like name@example.com"
    return None


def principal_of(person: Person) -> Principal:
    """The rights a signed-in person acts with: the same checks as an API key of that role."""
    return Principal(
        key_id=f"person:{person.id}",
        role=person.role,
        merchant_id=person.merchant_id,
        staff_id=person.staff_id,
    )


# ---- accounts ---------------------------------------------------------------------------


def _check_new_account(session: Session, email: str, password: str, name: str) -> None:
    problems: dict[str, str] = {}
    if (why := email_problem(email)) is not None:
        problems["email"] = why
    elif session.scalar(select(Person.id).where(Person.email == email)) is not None:
        problems["email"] = "someone already signs in with this email"
    if (why := passwords.password_problem(password, email=email, name=name)) is not None:
        problems["password"] = why
    if problems:
        raise InvalidInput("; ".join(problems.values()), fields=problems)


def create_person(
    session: Session,
    *,
    principal: Principal,
    email: str,
    password: str,
    role: Role,
    name: str = "",
    merchant_id: str | None = None,
    staff_id: str | None = None,
) -> Person:
    """A new sign-in. Merchant admins add their own people; platform admins anyone."""
    if role not in PERSON_ROLES:
        raise InvalidInput("people are platform admins, merchant admins or merchant staff")
    if role is Role.PLATFORM_ADMIN:
        require_platform(principal)
        merchant_id = staff_id = None
    else:
        if merchant_id is None:
            raise InvalidInput("a merchant's person needs the merchant")
        require_merchant_admin(principal, merchant_id)
        if session.get(Merchant, merchant_id) is None:
            raise NotFound("no merchant with this id")
        if staff_id is not None:
            staff = session.get(Staff, staff_id)
            if staff is None or staff.merchant_id != merchant_id:
                raise NotFound("no staff with this id")
    email = normalise_email(email)
    _check_new_account(session, email, password, name)
    now = clock.now()
    person = Person(
        id=new_id("per"),
        email=email,
        name=name.strip()[:120],
        password_hash=passwords.hash_password(password),
        role=role,
        merchant_id=merchant_id,
        staff_id=staff_id,
        active=True,
        created_at=now,
        password_changed_at=now,
    )
    session.add(person)
    session.flush()
    return person


def list_people(session: Session, *, principal: Principal, merchant_id: str) -> list[Person]:
    require_merchant_admin(principal, merchant_id)
    return list(
        session.scalars(
            select(Person).where(Person.merchant_id == merchant_id).order_by(Person.email)
        )
    )


def set_active(
    session: Session, *, principal: Principal, merchant_id: str, person_id: str, active: bool
) -> Person:
    require_merchant_admin(principal, merchant_id)
    person = session.get(Person, person_id)
    if person is None or person.merchant_id != merchant_id:
        raise NotFound("no person with this id")
    if not active and principal.key_id == f"person:{person.id}":
        raise Conflict("you cannot deactivate your own sign-in")
    person.active = active
    if not active:
        session.execute(delete(WebSession).where(WebSession.person_id == person.id))
    session.flush()
    return person


# ---- signing in -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignIn:
    """The outcome: a person and a fresh session token, or the reason it was refused."""

    person: Person | None = None
    token: str | None = None
    refused: str | None = None  # "invalid" | "rate_limited" | "inactive"
    retry_after: int = 0


def _audit(
    session: Session,
    *,
    email: str,
    outcome: str,
    person_id: str | None = None,
    ip: str = "",
    user_agent: str = "",
) -> None:
    session.add(
        SignInEvent(
            id=new_id("sie"),
            person_id=person_id,
            email=email[:254],
            outcome=outcome,
            ip=ip[:64],
            user_agent=user_agent[:300],
            at=clock.now(),
        )
    )
    session.flush()


def _recent_failures(session: Session, *, column: object, value: str, since: datetime) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                column == value,  # type: ignore[operator]
                SignInEvent.outcome.in_(("failed", "rate_limited")),
                SignInEvent.at >= since,
            )
        )
        or 0
    )


def _rate_limited(session: Session, email: str, ip: str) -> bool:
    since = clock.now() - FAILURE_WINDOW
    by_email = _recent_failures(session, column=SignInEvent.email, value=email, since=since)
    if by_email >= FAILURES_PER_EMAIL:
        return True
    if not ip:
        return False
    by_ip = _recent_failures(session, column=SignInEvent.ip, value=ip, since=since)
    return by_ip >= FAILURES_PER_ADDRESS


def new_session(session: Session, *, person: Person, ip: str = "", user_agent: str = "") -> str:
    """A fresh random session token (never one the browser brought: no fixation)."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    session.add(
        WebSession(
            id=token_hash(token),
            person_id=person.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + SESSION_IDLE,
            ip=ip[:64],
            user_agent=user_agent[:300],
        )
    )
    session.flush()
    return token


def sign_in(
    session: Session, *, email: str, password: str, ip: str = "", user_agent: str = ""
) -> SignIn:
    email = normalise_email(email)[:254]
    if _rate_limited(session, email, ip):
        _audit(session, email=email, outcome="rate_limited", ip=ip, user_agent=user_agent)
        return SignIn(refused="rate_limited", retry_after=int(FAILURE_WINDOW.total_seconds()))
    person = session.scalar(select(Person).where(Person.email == email))
    if person is None:
        passwords.verify_password(passwords.dummy_hash(), password)
        _audit(session, email=email, outcome="failed", ip=ip, user_agent=user_agent)
        return SignIn(refused="invalid")
    if not passwords.verify_password(person.password_hash, password):
        _audit(
            session,
            email=email,
            outcome="failed",
            person_id=person.id,
            ip=ip,
            user_agent=user_agent,
        )
        return SignIn(refused="invalid")
    if not person.active:
        _audit(
            session,
            email=email,
            outcome="inactive",
            person_id=person.id,
            ip=ip,
            user_agent=user_agent,
        )
        return SignIn(refused="inactive")
    if passwords.needs_rehash(person.password_hash):
        person.password_hash = passwords.hash_password(password)
    token = new_session(session, person=person, ip=ip, user_agent=user_agent)
    _audit(
        session, email=email, outcome="signed_in", person_id=person.id, ip=ip, user_agent=user_agent
    )
    return SignIn(person=person, token=token)


def session_person(session: Session, *, token: str) -> tuple[WebSession, Person] | None:
    """The live session and its person for a cookie's token, or None (unknown, expired,
    past its maximum age, or the person deactivated)."""
    if not token or len(token) > 100:
        return None
    row = session.execute(
        select(WebSession, Person)
        .join(Person, Person.id == WebSession.person_id)
        .where(WebSession.id == token_hash(token))
    ).first()
    if row is None:
        return None
    web_session, person = row
    now = clock.now()
    if (
        web_session.expires_at <= now
        or web_session.created_at + SESSION_MAX <= now
        or not person.active
    ):
        return None
    return web_session, person


def needs_touch(web_session: WebSession) -> bool:
    return clock.now() - web_session.last_seen_at >= TOUCH_EVERY


def touch(session: Session, *, session_id: str) -> None:
    """Slide the idle expiry forward (at most every few minutes, so pages stay reads)."""
    now = clock.now()
    session.execute(
        update(WebSession)
        .where(WebSession.id == session_id)
        .values(last_seen_at=now, expires_at=now + SESSION_IDLE)
    )


def sign_out(session: Session, *, token: str, ip: str = "") -> None:
    found = session_person(session, token=token)
    session.execute(delete(WebSession).where(WebSession.id == token_hash(token)))
    if found is not None:
        _audit(session, email=found[1].email, outcome="signed_out", person_id=found[1].id, ip=ip)


def sign_in_history(
    session: Session, *, principal: Principal, merchant_id: str, limit: int = 50
) -> list[SignInEvent]:
    """The merchant's people's recent sign-ins and failures (merchant admins)."""
    require_merchant_admin(principal, merchant_id)
    return list(
        session.scalars(
            select(SignInEvent)
            .join(Person, Person.id == SignInEvent.person_id)
            .where(Person.merchant_id == merchant_id)
            .order_by(SignInEvent.at.desc())
            .limit(limit)
        )
    )


# ---- password reset ---------------------------------------------------------------------


def request_reset(session: Session, *, email: str, ip: str = "") -> tuple[Person, str] | None:
    """A reset token for an active person with this email, or None. The page answers the
    same either way, so it does not tell who has an account; the entry point sends the mail
    after commit."""
    email = normalise_email(email)[:254]
    since = clock.now() - FAILURE_WINDOW
    recent = session.scalar(
        select(func.count()).where(
            SignInEvent.email == email,
            SignInEvent.outcome == "reset_requested",
            SignInEvent.at >= since,
        )
    )
    person = session.scalar(select(Person).where(Person.email == email))
    _audit(
        session,
        email=email,
        outcome="reset_requested",
        person_id=person.id if person else None,
        ip=ip,
    )
    if person is None or not person.active or (recent or 0) >= 3:
        return None
    token = secrets.token_urlsafe(32)
    now = clock.now()
    session.add(
        PasswordReset(
            id=token_hash(token), person_id=person.id, created_at=now, expires_at=now + RESET_VALID
        )
    )
    session.flush()
    return person, token


def valid_reset(session: Session, *, token: str) -> PasswordReset | None:
    if not token or len(token) > 100:
        return None
    reset = session.get(PasswordReset, token_hash(token))
    if reset is None or reset.used_at is not None or reset.expires_at <= clock.now():
        return None
    return reset


def reset_password(session: Session, *, token: str, password: str) -> Person:
    """Set a new password from a reset link; every session of that person ends."""
    reset = valid_reset(session, token=token)
    if reset is None:
        raise InvalidInput("this reset link has expired or was already used; ask for a new one")
    person = session.get(Person, reset.person_id)
    assert person is not None
    why = passwords.password_problem(password, email=person.email, name=person.name)
    if why is not None:
        raise InvalidInput(why, fields={"password": why})
    now = clock.now()
    person.password_hash = passwords.hash_password(password)
    person.password_changed_at = now
    reset.used_at = now
    session.execute(delete(WebSession).where(WebSession.person_id == person.id))
    _audit(session, email=person.email, outcome="password_reset", person_id=person.id)
    session.flush()
    return person


def set_locale(session: Session, *, person_id: str, locale: str) -> None:
    session.execute(update(Person).where(Person.id == person_id).values(locale=locale))


def purge_expired(session: Session) -> int:
    """Delete sessions past their expiry and reset links past theirs; how many went."""
    now = clock.now()
    gone = session.execute(delete(WebSession).where(WebSession.expires_at <= now)).rowcount
    gone += session.execute(delete(PasswordReset).where(PasswordReset.expires_at <= now)).rowcount
    return int(gone or 0)
