"""Sign-ins for the demo city, printed by `./dev up` (development only)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.people import passwords
from o2oloop.people.models import Person
from o2oloop.people.service import create_person

_PLATFORM = Principal(key_id="demo", role=Role.PLATFORM_ADMIN)


@dataclass(frozen=True, slots=True)
class DemoLogin:
    role: Role
    email: str
    password: str


def _password() -> str:
    # Four random words' worth of entropy in a form that is easy to type from a terminal.
    return "-".join(secrets.token_hex(3) for _ in range(4))


def demo_login(
    session: Session,
    *,
    email: str,
    role: Role,
    merchant_id: str | None = None,
    name: str = "",
) -> DemoLogin:
    """A sign-in with a fresh random password: created, or its password replaced (only the
    hash is stored, so an existing one cannot be printed again)."""
    password = _password()
    person = session.scalar(select(Person).where(Person.email == email))
    if person is None:
        create_person(
            session,
            principal=_PLATFORM,
            email=email,
            password=password,
            role=role,
            merchant_id=merchant_id,
            name=name,
        )
    else:
        person.password_hash = passwords.hash_password(password)
        person.password_changed_at = clock.now()
        person.active = True
        session.flush()
    return DemoLogin(role=role, email=email, password=password)


def demo_merchant_login(session: Session, *, merchant_id: str) -> DemoLogin:
    """The demo merchant's owner: signs in to the console at /console."""
    return demo_login(
        session,
        email="owner@demo.o2oloop.dev",
        role=Role.MERCHANT_ADMIN,
        merchant_id=merchant_id,
        name="Demo owner",
    )


def demo_platform_login(session: Session) -> DemoLogin:
    """The demo platform admin: signs in to the admin pages."""
    return demo_login(
        session, email="admin@demo.o2oloop.dev", role=Role.PLATFORM_ADMIN, name="Demo admin"
    )
