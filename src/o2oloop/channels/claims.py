"""What the channels domain adds to a claim, in the claim's own transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session

from o2oloop.channels import attribution, offpeak
from o2oloop.codes.models import Code


def after_claim(session: Session, *, code: Code, token: str | None, secret: str) -> None:
    """Refuse a plain claim of a slot-capped steering offer; attribute the claim to the
    channel or share its token names (a bad token is ignored)."""
    offpeak.guard_plain_claim(session, offer_id=code.offer_id)
    attribution.attribute_claim(session, code=code, token=token, secret=secret)
