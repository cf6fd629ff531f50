"""People's sign-ins for the demo city (email and password), printed by `o2oloop up`.

The slot for the people and password service of the web console: once it exists, the demo
merchant's owner gets a person with a password here. Until then the city has API keys only.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from o2oloop.sim.world import CityRun


def create(session: Session, run: CityRun) -> dict[str, str]:
    """Sign-ins to print, e.g. {"merchant_login": "owner@… / password"}; none yet."""
    return {}
