"""The counter's statements, compiled once per dialect and run on the driver's connection.

A redemption is a few dozen microseconds of indexed lookups and small writes in one short
transaction, so the statements of its hot path are `Prepared` rather than ORM queries.
"""

from __future__ import annotations

from sqlalchemy import bindparam, func, insert, select, update

from o2oloop.auth.models import ApiKey
from o2oloop.codes.models import (
    BatchCodeUse,
    Code,
    CodeBatch,
    CodeState,
    Redemption,
    RedemptionAttempt,
    RedemptionState,
)
from o2oloop.customers.models import Consumer
from o2oloop.merchants.models import Store, Terminal
from o2oloop.offers.models import Offer, OfferState, OfferStoreRedemptions
from o2oloop.prepared import Prepared

_codes, _offers, _batches = Code.__table__, Offer.__table__, CodeBatch.__table__
_redemptions, _attempts = Redemption.__table__, RedemptionAttempt.__table__
_terminals, _stores, _uses = Terminal.__table__, Store.__table__, BatchCodeUse.__table__
_consumers, _store_counts = Consumer.__table__, OfferStoreRedemptions.__table__
_keys = ApiKey.__table__

_REJECTED_SINCE = (
    select(func.count())
    .select_from(_attempts)
    .where(
        _attempts.c.terminal_id == _terminals.c.id,
        _attempts.c.accepted.is_(False),
        _attempts.c.at >= bindparam("since"),
    )
    .scalar_subquery()
)
_AT_WORK = (
    select(
        _terminals.c.merchant_id,
        _terminals.c.store_id,
        _stores.c.timezone,
        _REJECTED_SINCE.label("rejected"),
    )
    .join(_stores, _stores.c.id == _terminals.c.store_id)
    .where(_terminals.c.active, _stores.c.active)
)
AT_WORK = Prepared(_AT_WORK.where(_terminals.c.id == bindparam("terminal_id")))
AT_WORK_OF_KEY = Prepared(  # the same, found by the terminal's API key before it is checked
    _AT_WORK.where(
        _terminals.c.id
        == select(_keys.c.terminal_id).where(_keys.c.id == bindparam("key_id")).scalar_subquery()
    )
)
CODE_BY_DIGEST = Prepared(select(_codes).where(_codes.c.digest == bindparam("digest")))
BATCH_BY_NO = Prepared(select(_batches).where(_batches.c.batch_no == bindparam("batch_no")))
BATCH_CODE_USED = Prepared(
    select(_uses.c.code_index).where(
        _uses.c.batch_id == bindparam("batch_id"), _uses.c.code_index == bindparam("index")
    )
)
OFFER_BY_ID = Prepared(select(_offers).where(_offers.c.id == bindparam("offer_id")))
OFFER_OF_CODE = Prepared(
    select(_offers).where(
        _offers.c.id
        == select(_codes.c.offer_id).where(_codes.c.digest == bindparam("digest")).scalar_subquery()
    )
)
OFFER_STATE = Prepared(select(_offers.c.state).where(_offers.c.id == bindparam("offer_id")))
# Rules on a customer's history (per-customer limit, new customers only) are decided by the
# customer's other redemptions, at this offer or anywhere at the merchant: their completions
# take turns on the customer's own row (SQLite's writers take turns anyway).
LOCK_CUSTOMER = Prepared(
    select(_consumers.c.id).where(_consumers.c.id == bindparam("consumer_id")).with_for_update()
)
_OFFER_PUBLISHED = (
    select(_offers.c.id)
    .where(_offers.c.id == bindparam("of_offer"), _offers.c.state == OfferState.PUBLISHED)
    .exists()
)
USE_CODE = Prepared(  # the one write only one attempt can win, while the offer is published
    update(_codes)
    .where(
        _codes.c.id == bindparam("code_id"),
        _codes.c.state == CodeState.ACTIVE,
        _OFFER_PUBLISHED,
    )
    .values(state=CodeState.REDEEMED, redeemed_at=bindparam("at"))
)
USE_BATCH_CODE = Prepared(  # the primary key lets only one attempt in
    lambda insert_into: (
        insert_into(_uses)
        .values(
            batch_id=bindparam("batch_id"),
            code_index=bindparam("index"),
            redemption_id=bindparam("redemption_id"),
        )
        .on_conflict_do_nothing()
        .returning(_uses.c.code_index)
    )
)
REDEEMED_BY = Prepared(
    select(func.count())
    .select_from(_redemptions)
    .where(
        _redemptions.c.consumer_id == bindparam("consumer_id"),
        _redemptions.c.merchant_id == bindparam("merchant_id"),
        _redemptions.c.offer_id == bindparam("offer_id"),
        _redemptions.c.state == RedemptionState.REDEEMED,
    )
)
EARLIER_REDEMPTION = Prepared(
    select(_redemptions.c.id)
    .where(
        _redemptions.c.merchant_id == bindparam("merchant_id"),
        _redemptions.c.consumer_id == bindparam("consumer_id"),
        _redemptions.c.state == RedemptionState.REDEEMED,
    )
    .limit(1)
)
INSERT_REDEMPTION = Prepared(
    insert(_redemptions).values({c.key: bindparam(c.key) for c in _redemptions.columns})
)
INSERT_ATTEMPT = Prepared(
    insert(_attempts).values({c.key: bindparam(c.key) for c in _attempts.columns if c.key != "id"})
)
COUNT_REDEMPTION = Prepared(  # the till's shard of its store's count (`store_count_shard`)
    lambda insert_into: (
        insert_into(_store_counts)
        .values(
            offer_id=bindparam("offer_id"),
            store_id=bindparam("store_id"),
            shard=bindparam("shard"),
            redeemed=1,
        )
        .on_conflict_do_update(
            index_elements=[
                _store_counts.c.offer_id,
                _store_counts.c.store_id,
                _store_counts.c.shard,
            ],
            set_={"redeemed": _store_counts.c.redeemed + 1},
        )
    )
)
REDEMPTIONS = _redemptions  # its columns name what `INSERT_REDEMPTION` takes
