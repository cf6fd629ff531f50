"""People's sign-ins for the demo city and a pairing link for its terminal, printed by `up`.

The first merchant's owner signs in to the console with email and password, the platform
admin to the admin pages; the link pairs the device that opens it (once) as that merchant's
first terminal, valid until a week after the city's last day.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from o2oloop.people import demo
from o2oloop.sim.world import CityRun
from o2oloop.terminal import pairing

PAIRING_DAYS_AFTER_END = 7


def create(session: Session, run: CityRun) -> dict[str, str]:
    merchant = run.merchants[0]
    owner = demo.demo_merchant_login(session, merchant_id=merchant.id)
    admin = demo.demo_platform_login(session)
    assert merchant.admin is not None
    link = pairing.start(
        session,
        principal=merchant.admin,
        merchant_id=merchant.id,
        terminal_id=merchant.stores[0].terminal.terminal_id or "",
        secret_key=run.secret_key,
        lifetime=run.end - run.frozen.now() + timedelta(days=PAIRING_DAYS_AFTER_END),
    )
    return {
        "merchant_login": f"{owner.email}  password {owner.password}",
        "admin_login": f"{admin.email}  password {admin.password}",
        "terminal_pairing": f"/terminal/pair?code={link.code}",
    }
