"""A consumer's rights over their data: export everything, erase everything personal.

Erasure deletes the personal data (phone hash and number, name, memberships, consent log,
scores) and keeps the visits as anonymous facts (no consumer, no member), so merchants'
revenue and store-load aggregates stay true; reviews keep counting their ratings while
their text and author are hidden by a logged moderation entry. This folder sits above the
domains holding a consumer's data (customers, visits, analytics, reviews), so it may call
each of them; a domain that keeps personal data adds its step to `ERASURE`. Copies kept
outside the transaction (messages, providers' books) are erased after commit by the
handlers of `ConsumerErased`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from o2oloop import clock, events
from o2oloop.analytics import summary
from o2oloop.analytics.models import MemberScore
from o2oloop.auth import service as keys
from o2oloop.auth.models import ApiKey
from o2oloop.auth.principal import Principal
from o2oloop.customers.events import ConsumerErased
from o2oloop.customers.models import ConsentEvent, Membership
from o2oloop.customers.service import get_self
from o2oloop.merchants.models import Merchant, Store
from o2oloop.reviews import moderation as reviews
from o2oloop.visits.models import Visit


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def export_consumer(session: Session, *, principal: Principal) -> dict[str, Any]:
    consumer = get_self(session, principal=principal)
    cid = consumer.id
    merchants = {
        merchant_id: name
        for merchant_id, name in session.execute(
            select(Merchant.id, Merchant.name)
            .join(Membership, Membership.merchant_id == Merchant.id)
            .where(Membership.consumer_id == cid)
        ).tuples()
    }
    memberships = [
        {
            "member_id": m.id,
            "merchant_id": m.merchant_id,
            "merchant_name": merchants.get(m.merchant_id, ""),
            "source": m.source.value,
            "member_card": m.member_card,
            "marketing_consent": m.marketing_consent,
            "consent_given_at": _iso(m.consent_given_at),
            "consent_withdrawn_at": _iso(m.consent_withdrawn_at),
            "first_visit_at": _iso(m.first_visit_at),
            "last_visit_at": _iso(m.last_visit_at),
            "visit_count": m.visit_count,
            "total_spent": m.total_spent,
            "created_at": _iso(m.created_at),
        }
        for m in session.scalars(
            select(Membership).where(Membership.consumer_id == cid).order_by(Membership.id)
        )
    ]
    events = [
        {
            "merchant_id": e.merchant_id,
            "marketing_consent": e.marketing_consent,
            "recorded_by": e.recorded_by.split(":", 1)[0],
            "occurred_at": _iso(e.occurred_at),
        }
        for e in session.scalars(
            select(ConsentEvent).where(ConsentEvent.consumer_id == cid).order_by(ConsentEvent.id)
        )
    ]
    visits = [
        {
            "visit_id": v.id,
            "merchant_id": v.merchant_id,
            "store_id": v.store_id,
            "store_name": store_name,
            "amount": v.amount,
            "currency": v.currency,
            "occurred_at": _iso(v.occurred_at),
            "source": v.source.value,
            "code": v.code,
            "items": v.items,
        }
        for v, store_name in session.execute(
            select(Visit, Store.name)
            .join(Store, Store.id == Visit.store_id)
            .where(Visit.consumer_id == cid)
            .order_by(Visit.occurred_at, Visit.id)
        ).tuples()
    ]
    scores = [
        {
            "merchant_id": s.merchant_id,
            "as_of": _iso(s.as_of),
            "segment": s.segment.value,
            "rfm": s.rfm,
            "p_alive": s.p_alive,
            "expected_visits_30d": s.expected_visits_30d,
            "expected_next_visit_at": _iso(s.expected_next_visit_at),
            "clv": s.clv,
            "spending_level": s.spending_level.value,
            "home_cell": s.home_cell,
        }
        for s in session.scalars(select(MemberScore).where(MemberScore.consumer_id == cid))
    ]
    api_keys = [
        {
            "key_id": k.id,
            "role": k.role.value,
            "created_at": _iso(k.created_at),
            "last_used_at": _iso(k.last_used_at),
            "revoked_at": _iso(k.revoked_at),
        }
        for k in session.scalars(select(ApiKey).where(ApiKey.consumer_id == cid))
    ]
    return {
        "exported_at": clock.now(),
        "consumer": {
            "id": cid,
            "display_name": consumer.display_name,
            "created_at": _iso(consumer.created_at),
            "phone": consumer.phone_e164,
            "phone_known_as_keyed_hash": consumer.phone_hash is not None,
        },
        "memberships": memberships,
        "consent_events": events,
        "visits": visits,
        "scores": scores,
        "api_keys": api_keys,
        "other": {
            "reviews": reviews.export_consumer_reviews(session, consumer_id=cid),
        },
    }


def _hide_reviews(session: Session, consumer_id: str) -> int:
    return reviews.erase_consumer_reviews(session, consumer_id=consumer_id)


def _anonymise_visits(session: Session, consumer_id: str) -> int:
    return session.execute(
        update(Visit)
        .where(Visit.consumer_id == consumer_id)
        .values(consumer_id=None, member_id=None)
        .execution_options(synchronize_session=False)
    ).rowcount


def _delete_where(model: Any) -> Callable[[Session, str], int]:
    def delete_rows(session: Session, consumer_id: str) -> int:
        return session.execute(
            delete(model)
            .where(model.consumer_id == consumer_id)
            .execution_options(synchronize_session=False)
        ).rowcount

    return delete_rows


# Each domain's part of an erasure, in the erasure's transaction and in this order: the
# receipt's field and `step(session, consumer_id)` returning how many rows it changed.
ERASURE: tuple[tuple[str, Callable[[Session, str], int]], ...] = (
    ("reviews_hidden", _hide_reviews),
    ("visits_anonymised", _anonymise_visits),
    ("scores_deleted", summary.erase_scores),
    ("consent_events_deleted", _delete_where(ConsentEvent)),
    ("memberships_deleted", _delete_where(Membership)),
)


def erase_consumer(session: Session, *, principal: Principal) -> dict[str, Any]:
    """Delete the consumer's personal data; their visits stay as anonymous facts."""
    consumer = get_self(session, principal=principal)
    cid = consumer.id
    counts = {field: step(session, cid) for field, step in ERASURE}
    now = clock.now()
    consumer.display_name = ""
    consumer.phone_hash = None
    consumer.phone_e164 = None
    consumer.email = consumer.timezone = consumer.birthday = None
    consumer.erased_at = now
    keys.revoke_keys_where(session, consumer_id=cid)
    # Domains that keep copies (messages, their providers' books) erase them on this event.
    events.record(session, ConsumerErased(consumer_id=cid))
    session.flush()
    session.expire_all()
    return {"consumer_id": cid, "erased_at": now, **counts}
