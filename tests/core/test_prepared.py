"""Prepared statements on the driver's connection (`o2oloop.prepared`) and the transactions
that run them (`Database.lean`, `run_transaction`, `run_reading`): the same values with the
same Python types as SQLAlchemy, SQLAlchemy's own exceptions, commit and rollback as
promised. Run on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Select, bindparam, func, insert, select, text, update
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    MultipleResultsFound,
    OperationalError,
)

from factories import Tenant, consumer_principal, make_consumer, make_offer, make_tenant
from o2oloop import clock
from o2oloop.auth import service as keys
from o2oloop.auth.models import ApiKey, Role
from o2oloop.codes import service as codes
from o2oloop.codes import statements as counter_sql
from o2oloop.codes.models import Code, CodeState
from o2oloop.db import Database, new_id
from o2oloop.merchants.models import Store
from o2oloop.offers.models import DiscountKind, Offer, OfferKind, OfferState
from o2oloop.prepared import DriverTransaction, Prepared

KEYS = codes.Keys.from_secret("prepared-secret-" + "x" * 32)
SHANGHAI = ZoneInfo("Asia/Shanghai")

_offers, _codes, _keys, _stores = (
    Offer.__table__,
    Code.__table__,
    ApiKey.__table__,
    Store.__table__,
)

OFFER_BY_ID = select(_offers).where(_offers.c.id == bindparam("offer_id"))
CODE_BY_DIGEST = select(_codes).where(_codes.c.digest == bindparam("digest"))
KEY_BY_ID = select(_keys).where(_keys.c.id == bindparam("key_id"))

TITLE = Prepared(select(_offers.c.title).where(_offers.c.id == bindparam("offer_id")))
RENAME = Prepared(
    update(_offers).where(_offers.c.id == bindparam("offer_id")).values(title=bindparam("to"))
)
RENAME_ALL_OF = Prepared(
    update(_offers)
    .where(_offers.c.merchant_id == bindparam("merchant_id"))
    .values(title=bindparam("to"))
)
COUNT_OFFERS_OF = Prepared(
    select(func.count()).select_from(_offers).where(_offers.c.merchant_id == bindparam("of"))
)
LABEL = Prepared(select(_keys.c.label).where(_keys.c.id == bindparam("key_id")))
RELABEL = Prepared(
    update(_keys).where(_keys.c.id == bindparam("key_id")).values(label=bindparam("to"))
)
INSERT_CODE = Prepared(insert(_codes).values({c.key: bindparam(c.key) for c in _codes.columns}))


@dataclass(frozen=True)
class Claimed:
    """A tenant, a published coupon of it with every kind of rule set, and a claimed code."""

    tenant: Tenant
    offer_id: str
    consumer_id: str
    code_id: str
    valid_from: datetime
    valid_until: datetime


def _claimed(db: Database) -> Claimed:
    tenant = make_tenant(db)
    # A month ago at an odd moment (Shanghai time, with microseconds), so the code's own
    # 30 days always end before the offer's year does, whatever today is.
    month_ago = (datetime.now(SHANGHAI) - timedelta(days=30)).date()
    valid_from = datetime.combine(month_ago, time(8, 30, 15, 123456), tzinfo=SHANGHAI)
    valid_until = valid_from + timedelta(days=365, microseconds=1)
    offer_id = make_offer(
        db,
        tenant,
        valid_from=valid_from.isoformat(),
        valid_until=valid_until.isoformat(),
        valid_days_after_claim=30,
        weekdays=[1, 3, 5],
        time_windows=[{"start": "11:00", "end": "14:00"}],
        store_ids=[tenant.store_id],
        new_customers_only=True,
        min_spend=5000,
    )
    consumer_id, _ = make_consumer(db)
    with db.transaction() as session:
        code = codes.claim(
            session, principal=consumer_principal(consumer_id), offer_id=offer_id, keys=KEYS
        )
    return Claimed(tenant, offer_id, consumer_id, code.id, valid_from, valid_until)


@pytest.fixture
def claimed(db: Database) -> Claimed:
    return _claimed(db)


def _title(db: Database, offer_id: str) -> str:
    with db.reading() as session:
        return session.execute(select(Offer.title).where(Offer.id == offer_id)).scalar_one()


def _digest(db: Database, code_id: str) -> bytes:
    with db.reading() as session:
        return session.execute(select(Code.digest).where(Code.id == code_id)).scalar_one()


def _same_as_sqlalchemy(db: Database, statement: Select[Any], **values: Any) -> Any:
    """The row of `statement` run as a `Prepared`, checked value by value and type by type
    against the row SQLAlchemy gives for the same statement; in a lean transaction and in
    the driver transaction of an ORM session alike."""
    prepared = Prepared(statement)
    with db.reading() as session:
        expected = session.execute(statement, values).one()
        of_session = DriverTransaction.of_session(session).one(prepared, **values)
    with db.lean(write=False) as transaction:
        lean = transaction.one(prepared, **values)
    for row in (lean, of_session):
        assert row._fields == tuple(expected._fields)
        assert tuple(row) == tuple(expected)
        assert [type(value) for value in row] == [type(value) for value in expected]
        for value in row:
            if isinstance(value, datetime):
                assert value.tzinfo is UTC
    return lean


# ---- the same values, with the same types, as SQLAlchemy ---------------------------------------


def test_an_offer_reads_as_sqlalchemy_reads_it(db: Database, claimed: Claimed) -> None:
    row = _same_as_sqlalchemy(db, OFFER_BY_ID, offer_id=claimed.offer_id)
    assert row.id == claimed.offer_id
    assert row.state is OfferState.PUBLISHED
    assert row.kind is OfferKind.COUPON
    assert row.discount_kind is DiscountKind.AMOUNT_OFF
    assert row.percent_off_bps is None
    assert row.valid_from == claimed.valid_from  # the same instant …
    assert row.valid_from.tzinfo is UTC  # … in UTC
    assert row.valid_until == claimed.valid_until
    assert row.new_customers_only is True
    assert row.weekdays == [1, 3, 5]
    assert row.time_windows == [{"start": "11:00", "end": "14:00"}]
    assert row.store_ids == [claimed.tenant.store_id]
    assert row.topup_tiers == []
    assert row.issued_count == 1


def test_json_objects_read_as_sqlalchemy_reads_them(db: Database) -> None:
    tenant = make_tenant(db)
    tiers = [{"pay": 50000, "bonus": 5000}, {"pay": 100000, "bonus": 15000}]
    offer_id = make_offer(
        db,
        tenant,
        kind="stored_value",
        title="Top-up card",
        discount_kind=None,
        amount_off=None,
        topup_tiers=tiers,
    )
    row = _same_as_sqlalchemy(db, OFFER_BY_ID, offer_id=offer_id)
    assert row.kind is OfferKind.STORED_VALUE
    assert row.topup_tiers == tiers
    assert row.weekdays is None
    assert row.new_customers_only is False


def test_a_code_found_by_its_digest_reads_as_sqlalchemy_reads_it(
    db: Database, claimed: Claimed
) -> None:
    digest = _digest(db, claimed.code_id)
    row = _same_as_sqlalchemy(db, CODE_BY_DIGEST, digest=digest)
    assert row.id == claimed.code_id
    assert type(row.digest) is bytes and row.digest == digest
    assert row.state is CodeState.ACTIVE
    assert row.consumer_id == claimed.consumer_id
    assert row.claimed_at.tzinfo is UTC
    assert row.expires_at == row.claimed_at + timedelta(days=30)
    assert row.redeemed_at is None
    assert row.price_paid == 0


def test_an_api_key_reads_as_sqlalchemy_reads_it_before_and_after_revoking(db: Database) -> None:
    tenant = make_tenant(db)
    row = _same_as_sqlalchemy(db, KEY_BY_ID, key_id=tenant.admin_key_id)
    assert row.role is Role.MERCHANT_ADMIN
    assert row.merchant_id == tenant.merchant_id
    assert row.revoked_at is None
    assert row.created_at.tzinfo is UTC

    with db.transaction() as session:
        key = session.get(ApiKey, tenant.admin_key_id)
        assert key is not None
        key.revoked_at = clock.now()
    row = _same_as_sqlalchemy(db, KEY_BY_ID, key_id=tenant.admin_key_id)
    assert row.revoked_at == key.revoked_at
    assert row.revoked_at.tzinfo is UTC


def test_values_written_into_a_statement_are_bound_and_converted(
    db: Database, claimed: Claimed
) -> None:
    published = Prepared(
        select(_offers.c.id).where(
            _offers.c.merchant_id == bindparam("merchant_id"),
            _offers.c.state == OfferState.PUBLISHED,
            _offers.c.valid_from == claimed.valid_from,  # Shanghai time, stored in UTC
            _offers.c.new_customers_only == True,  # noqa: E712 - a literal, bound once
        )
    )
    drafts = Prepared(
        select(_offers.c.id).where(
            _offers.c.merchant_id == bindparam("merchant_id"),
            _offers.c.state == OfferState.DRAFT,
        )
    )
    merchant_id = claimed.tenant.merchant_id
    with db.lean(write=False) as transaction:
        assert transaction.scalar(published, merchant_id=merchant_id) == claimed.offer_id
        assert transaction.one_or_none(drafts, merchant_id=merchant_id) is None
        # compiled once per dialect, run again with other values
        assert published.compiled(transaction.dialect) is published.compiled(transaction.dialect)
        assert transaction.scalar(published, merchant_id="mer_none") is None


def test_datetime_enum_and_boolean_parameters_are_converted(db: Database, claimed: Claimed) -> None:
    window = Prepared(
        select(_offers.c.id).where(
            _offers.c.state == bindparam("state"),
            _offers.c.valid_from <= bindparam("at"),
            _offers.c.valid_until > bindparam("at"),
            _offers.c.new_customers_only == bindparam("newcomers"),
        )
    )
    inside = claimed.valid_from + timedelta(days=150)
    before = claimed.valid_from - timedelta(microseconds=1)
    published = OfferState.PUBLISHED
    with db.lean(write=False) as transaction:

        def found(state: OfferState, at: datetime, newcomers: bool) -> Any:
            return transaction.scalar(window, state=state, at=at, newcomers=newcomers)

        assert found(published, inside, True) == claimed.offer_id
        assert found(published, claimed.valid_from, True) == claimed.offer_id  # to the µs
        assert found(published, before, True) is None
        assert found(OfferState.PAUSED, inside, True) is None
        assert found(published, inside, False) is None


def test_an_update_binds_a_datetime_and_an_enum_as_the_orm_stores_them(
    db: Database, claimed: Claimed
) -> None:
    use = Prepared(
        update(_codes)
        .where(_codes.c.id == bindparam("code_id"), _codes.c.state == CodeState.ACTIVE)
        .values(state=bindparam("new_state"), redeemed_at=bindparam("at"))
        .returning(_codes.c.state, _codes.c.redeemed_at)
    )
    at = datetime(2026, 6, 1, 20, 15, 30, 654321, tzinfo=SHANGHAI)
    with db.lean(write=True) as transaction:
        returned = transaction.one(
            use, code_id=claimed.code_id, new_state=CodeState.REDEEMED, at=at
        )
    assert returned.state is CodeState.REDEEMED
    assert returned.redeemed_at == at and returned.redeemed_at.tzinfo is UTC

    with db.reading() as session:
        code = session.get(Code, claimed.code_id)
        assert code is not None
        assert code.state is CodeState.REDEEMED
        assert code.redeemed_at == at and code.redeemed_at.tzinfo is UTC
        # stored exactly as the ORM stores these values: its own queries find the row
        found = session.scalars(
            select(Code.id).where(Code.state == CodeState.REDEEMED, Code.redeemed_at == at)
        ).all()
        assert found == [claimed.code_id]


# ---- execute, scalar, one ----------------------------------------------------------------------


def test_execute_returns_the_number_of_rows_an_update_matched(db: Database) -> None:
    tenant = make_tenant(db)
    offer_ids = [make_offer(db, tenant, title=f"Offer {n}") for n in range(3)]
    with db.lean(write=True) as transaction:
        assert transaction.execute(RENAME, offer_id="ofr_none", to="Nobody") == 0
        assert transaction.execute(RENAME, offer_id=offer_ids[0], to="One") == 1
        assert transaction.execute(RENAME_ALL_OF, merchant_id=tenant.merchant_id, to="All") == 3
        assert transaction.execute(RENAME_ALL_OF, merchant_id="mer_none", to="None") == 0
    assert [_title(db, offer_id) for offer_id in offer_ids] == ["All"] * 3


def test_the_scalar_of_an_unlabelled_count(db: Database) -> None:
    tenant, other = make_tenant(db), make_tenant(db)
    for _ in range(3):
        make_offer(db, tenant)
    make_offer(db, other)
    with db.lean(write=False) as transaction:
        assert transaction.scalar(COUNT_OFFERS_OF, of=tenant.merchant_id) == 3
        assert transaction.scalar(COUNT_OFFERS_OF, of="mer_none") == 0
        row = transaction.one(COUNT_OFFERS_OF, of=other.merchant_id)
        assert row._fields == ("_0",)  # a positional name for the unnamed column
        assert row._0 == 1 and type(row._0) is int


def test_one_raises_lookup_error_when_there_is_no_row(db: Database) -> None:
    with db.lean(write=False) as transaction:
        with pytest.raises(LookupError):
            transaction.one(TITLE, offer_id="ofr_none")
        assert transaction.one_or_none(TITLE, offer_id="ofr_none") is None
        assert transaction.scalar(TITLE, offer_id="ofr_none") is None


def test_more_than_one_row_is_an_error_as_in_sqlalchemy(db: Database) -> None:
    tenant = make_tenant(db)
    make_offer(db, tenant)
    make_offer(db, tenant)
    titles_of = Prepared(
        select(_offers.c.title).where(_offers.c.merchant_id == bindparam("merchant_id"))
    )
    with db.lean(write=False) as transaction, pytest.raises(MultipleResultsFound):
        transaction.one_or_none(titles_of, merchant_id=tenant.merchant_id)


def test_a_missing_parameter_is_named_before_anything_runs(db: Database) -> None:
    with db.lean(write=False) as transaction, pytest.raises(ArgumentError, match="offer_id"):
        transaction.one_or_none(TITLE)


def test_a_statement_with_an_in_list_parameter_is_refused_when_compiled(db: Database) -> None:
    in_list = Prepared(
        select(_offers.c.title).where(_offers.c.id.in_(bindparam("ids", expanding=True)))
    )
    with db.lean(write=False) as transaction, pytest.raises(ArgumentError, match="IN"):
        transaction.one_or_none(in_list, ids=["ofr_a"])


# ---- errors are SQLAlchemy's -------------------------------------------------------------------


def _code_values(db: Database, claimed: Claimed, secret: str) -> dict[str, Any]:
    """A new code with the digest of the claimed one: a unique violation to insert."""
    return {
        "id": secret,
        "merchant_id": claimed.tenant.merchant_id,
        "offer_id": claimed.offer_id,
        "consumer_id": claimed.consumer_id,
        "digest": _digest(db, claimed.code_id),
        "state": CodeState.ACTIVE,
        "claimed_at": clock.now(),
        "expires_at": None,
        "redeemed_at": None,
        "price_paid": 0,
        "payment_intent_id": "pi_" + secret[4:],
    }


def test_a_unique_violation_is_sqlalchemy_s_integrity_error_with_parameters_hidden(
    db: Database, claimed: Claimed
) -> None:
    secret = new_id("cod")
    with pytest.raises(IntegrityError) as raised, db.lean(write=True) as transaction:
        transaction.execute(INSERT_CODE, **_code_values(db, claimed, secret))
    error = raised.value
    assert isinstance(error, DBAPIError)
    assert isinstance(error.orig, db.engine.dialect.loaded_dbapi.IntegrityError)
    assert error.statement is not None and "INSERT INTO codes" in error.statement
    message = str(error)
    assert "hidden" in message
    assert secret not in message and secret[4:] not in message


def test_a_unique_violation_in_an_orm_session_is_the_same_integrity_error(
    db: Database, claimed: Claimed
) -> None:
    secret = new_id("cod")
    with pytest.raises(IntegrityError) as raised, db.transaction() as session:
        DriverTransaction.of_session(session).execute(
            INSERT_CODE, **_code_values(db, claimed, secret)
        )
    assert secret not in str(raised.value)


# ---- lean transactions -------------------------------------------------------------------------


def test_a_lean_write_commits_on_success(db: Database, claimed: Claimed) -> None:
    with db.lean(write=True) as transaction:
        assert transaction.execute(RENAME, offer_id=claimed.offer_id, to="Renamed") == 1
    assert _title(db, claimed.offer_id) == "Renamed"


def test_a_lean_write_that_fails_in_the_database_writes_nothing(
    db: Database, claimed: Claimed
) -> None:
    title = _title(db, claimed.offer_id)
    values = _code_values(db, claimed, new_id("cod"))
    with pytest.raises(IntegrityError), db.lean(write=True) as transaction:
        assert transaction.execute(RENAME, offer_id=claimed.offer_id, to="Half") == 1
        transaction.execute(INSERT_CODE, **values)
    assert _title(db, claimed.offer_id) == title


def test_a_lean_write_that_fails_in_python_writes_nothing(db: Database, claimed: Claimed) -> None:
    title = _title(db, claimed.offer_id)
    with pytest.raises(RuntimeError, match="after the first write"), db.lean(write=True) as tx:
        assert tx.execute(RENAME, offer_id=claimed.offer_id, to="Half") == 1
        raise RuntimeError("after the first write")
    assert _title(db, claimed.offer_id) == title
    with db.lean(write=True) as transaction:  # and the pooled connection is usable again
        assert transaction.execute(RENAME, offer_id=claimed.offer_id, to="Whole") == 1
    assert _title(db, claimed.offer_id) == "Whole"


def test_a_write_in_a_lean_read_is_never_persisted(db: Database, claimed: Claimed) -> None:
    """PostgreSQL's read begins READ ONLY and refuses the write; SQLite's deferred BEGIN
    takes the write lock when the UPDATE comes, the read sees its own write, and the
    rollback at the end of every read discards it."""
    title = _title(db, claimed.offer_id)
    if db.dialect == "postgresql":
        with pytest.raises(DBAPIError, match="read-only"), db.lean(write=False) as transaction:
            transaction.execute(RENAME, offer_id=claimed.offer_id, to="Unsaved")
    else:
        with db.lean(write=False) as transaction:
            assert transaction.execute(RENAME, offer_id=claimed.offer_id, to="Unsaved") == 1
            assert transaction.scalar(TITLE, offer_id=claimed.offer_id) == "Unsaved"
    assert _title(db, claimed.offer_id) == title


def test_run_reading_returns_the_work_s_result_and_persists_nothing(
    db: Database, claimed: Claimed
) -> None:
    title = _title(db, claimed.offer_id)

    def work(transaction: DriverTransaction) -> str:
        transaction.execute(RENAME, offer_id=claimed.offer_id, to="Unsaved")
        return str(transaction.scalar(TITLE, offer_id=claimed.offer_id))

    if db.dialect == "postgresql":  # its reads are READ ONLY
        with pytest.raises(DBAPIError, match="read-only"):
            asyncio.run(db.run_reading(work))
    else:
        assert asyncio.run(db.run_reading(work)) == "Unsaved"
    assert _title(db, claimed.offer_id) == title


def test_a_lean_transaction_has_no_session(db: Database) -> None:
    with db.lean(write=False) as transaction, pytest.raises(RuntimeError, match="orm=True"):
        _ = transaction.session


# ---- the driver transaction of an ORM session --------------------------------------------------


def _unsaved_key(tenant: Tenant, label: str) -> ApiKey:
    return ApiKey(
        id=new_id("key"),
        secret_hash="0" * 64,
        role=Role.MERCHANT_STAFF,
        label=label,
        merchant_id=tenant.merchant_id,
        created_at=clock.now(),
    )


def _key_exists(db: Database, key_id: str) -> bool:
    with db.reading() as session:
        return session.get(ApiKey, key_id) is not None


def test_of_session_sees_what_the_session_has_not_flushed(db: Database) -> None:
    tenant = make_tenant(db)
    with db.transaction() as session:
        key = _unsaved_key(tenant, "pending")
        session.add(key)
        transaction = DriverTransaction.of_session(session)
        assert transaction.session is session
        row = transaction.one(Prepared(KEY_BY_ID), key_id=key.id)
        assert row.label == "pending" and row.role is Role.MERCHANT_STAFF
        assert row.created_at == key.created_at
    assert _key_exists(db, key.id)


def test_writes_of_of_session_commit_with_the_session(db: Database) -> None:
    tenant = make_tenant(db)
    with db.transaction() as session:
        key = _unsaved_key(tenant, "before")
        session.add(key)
        transaction = DriverTransaction.of_session(session)
        assert transaction.execute(RELABEL, key_id=key.id, to="after") == 1
        # the session's own queries see the write: one transaction
        label = session.execute(select(ApiKey.label).where(ApiKey.id == key.id)).scalar_one()
        assert label == "after"
    with db.lean(write=False) as lean:
        assert lean.scalar(LABEL, key_id=key.id) == "after"


def test_writes_of_of_session_roll_back_with_the_session(db: Database) -> None:
    tenant = make_tenant(db)
    with pytest.raises(RuntimeError, match="give up"), db.transaction() as session:
        key = _unsaved_key(tenant, "before")
        session.add(key)
        transaction = DriverTransaction.of_session(session)
        assert transaction.execute(RELABEL, key_id=tenant.admin_key_id, to="relabelled") == 1
        raise RuntimeError("give up")
    assert not _key_exists(db, key.id)
    with db.lean(write=False) as lean:
        assert lean.scalar(LABEL, key_id=tenant.admin_key_id) != "relabelled"


# ---- run_transaction ---------------------------------------------------------------------------


def test_run_transaction_with_orm_gives_a_session_that_commits_with_it(db: Database) -> None:
    tenant = make_tenant(db)

    def work(transaction: DriverTransaction) -> str:
        key, _token = keys.issue_key(
            transaction.session, role=Role.MERCHANT_STAFF, merchant_id=tenant.merchant_id
        )
        assert transaction.execute(RELABEL, key_id=key.id, to="orm and driver") == 1
        return key.id

    key_id = asyncio.run(db.run_transaction(work, orm=True))
    with db.reading() as session:
        key = session.get(ApiKey, key_id)
        assert key is not None
        assert key.label == "orm and driver"


def test_run_transaction_with_orm_rolls_back_both_on_an_error(db: Database) -> None:
    tenant = make_tenant(db)
    issued: list[str] = []

    def work(transaction: DriverTransaction) -> None:
        key, _token = keys.issue_key(
            transaction.session, role=Role.MERCHANT_STAFF, merchant_id=tenant.merchant_id
        )
        issued.append(key.id)
        transaction.execute(RELABEL, key_id=tenant.admin_key_id, to="relabelled")
        raise RuntimeError("give up")

    with pytest.raises(RuntimeError, match="give up"):
        asyncio.run(db.run_transaction(work, orm=True))
    assert not _key_exists(db, issued[0])
    with db.lean(write=False) as lean:
        assert lean.scalar(LABEL, key_id=tenant.admin_key_id) != "relabelled"


def test_lean_run_transaction_commits_and_refuses_the_session(db: Database) -> None:
    tenant = make_tenant(db)

    def relabel(transaction: DriverTransaction) -> int:
        return transaction.execute(RELABEL, key_id=tenant.admin_key_id, to="lean")

    def needs_orm(transaction: DriverTransaction) -> None:
        transaction.execute(RELABEL, key_id=tenant.admin_key_id, to="half")
        transaction.session.flush()

    assert asyncio.run(db.run_transaction(relabel)) == 1
    with pytest.raises(RuntimeError, match="orm=True"):
        asyncio.run(db.run_transaction(needs_orm))
    with db.lean(write=False) as lean:
        assert lean.scalar(LABEL, key_id=tenant.admin_key_id) == "lean"


# ---- parity beyond what the counter uses today -------------------------------------------------


def test_an_insert_gets_the_defaults_of_the_columns_it_leaves_out(db: Database) -> None:
    """SQLAlchemy fills a column left out of an INSERT with its `default=` (api_keys.label
    defaults to ""); a `Prepared` INSERT must too, not bind NULL in its place."""
    tenant = make_tenant(db)
    statement = insert(_keys).values(
        id=bindparam("key_id"),
        secret_hash=bindparam("secret_hash_"),
        role=bindparam("role_"),
        merchant_id=bindparam("merchant_id_"),
        created_at=bindparam("at"),
    )

    def values(key_id: str) -> dict[str, Any]:
        return {
            "key_id": key_id,
            "secret_hash_": "0" * 64,
            "role_": Role.MERCHANT_STAFF,
            "merchant_id_": tenant.merchant_id,
            "at": clock.now(),
        }

    by_orm, prepared = new_id("key"), new_id("key")
    with db.transaction() as session:
        session.execute(statement, values(by_orm))
    with db.lean(write=True) as transaction:
        assert transaction.execute(Prepared(statement), **values(prepared)) == 1
    with db.lean(write=False) as transaction:
        assert transaction.scalar(LABEL, key_id=by_orm) == ""
        assert transaction.scalar(LABEL, key_id=prepared) == ""


def test_a_float_column_reads_as_sqlalchemy_reads_it(db: Database) -> None:
    """stores.latitude is a Float: PostgreSQL's numeric types choose their result processor
    by the type the driver reports, which `Prepared` does not pass."""
    tenant = make_tenant(db)
    row = _same_as_sqlalchemy(
        db, select(_stores).where(_stores.c.id == bindparam("store_id")), store_id=tenant.store_id
    )
    assert row.latitude == pytest.approx(31.23)
    assert row.active is True


# ---- a connection that dies ---------------------------------------------------------------------

BACKEND_PID = Prepared(select(func.pg_backend_pid()))


def test_a_connection_that_died_leaves_the_pool(pg_db: Database) -> None:
    """PostgreSQL ends the backend of the pool's only connection (a restart, a failover).
    The lean transaction that meets it fails with SQLAlchemy's OperationalError; the next
    one gets a new connection rather than the dead one again. No ping on checkout here,
    so only the invalidation can save the next transaction."""
    url = pg_db.engine.url.render_as_string(hide_password=False)
    db = Database.from_url(url, pool_size=1, max_overflow=0, pool_pre_ping=False)
    try:
        with db.lean(write=False) as transaction:
            pid = transaction.scalar(BACKEND_PID)
        with pg_db.engine.connect() as admin:
            admin.execute(select(func.pg_terminate_backend(pid)))
        with pytest.raises(OperationalError), db.lean(write=False) as transaction:
            transaction.scalar(BACKEND_PID)
        with db.lean(write=False) as transaction:
            assert transaction.scalar(BACKEND_PID) != pid
    finally:
        db.dispose()


def test_a_connection_that_died_while_idle_is_replaced_before_use(
    pg_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ping per checkout, but one for a connection that sat idle: the transaction after
    a server restart gets a live connection, not an error."""
    from o2oloop import db as db_module

    monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", 0.0)
    url = pg_db.engine.url.render_as_string(hide_password=False)
    db = Database.from_url(url, pool_size=1, max_overflow=0)
    try:
        with db.lean(write=False) as transaction:
            pid = transaction.scalar(BACKEND_PID)
        with pg_db.engine.connect() as admin:
            admin.execute(select(func.pg_terminate_backend(pid)))
        with db.lean(write=False) as transaction:
            assert transaction.scalar(BACKEND_PID) != pid
    finally:
        db.dispose()


# ---- reads sent ahead, and the connection handed back ------------------------------------------


def test_reads_sent_ahead_answer_as_the_same_reads_asked_later(
    db: Database, claimed: Claimed
) -> None:
    digest = _digest(db, claimed.code_id)
    offer, code = Prepared(OFFER_BY_ID), Prepared(CODE_BY_DIGEST)
    with db.lean(write=False) as transaction:
        expected = (
            transaction.one(offer, offer_id=claimed.offer_id),
            transaction.one(code, digest=digest),
        )
    with db.lean(write=True) as transaction:
        transaction.ahead(offer, offer_id=claimed.offer_id)
        transaction.ahead(code, digest=digest)
        transaction.ahead(TITLE, offer_id="ofr_never_asked_for")  # sent, never read: harmless
        # asked for in another order than sent, each gets its own answer
        assert transaction.one(code, digest=digest) == expected[1]
        assert transaction.one(offer, offer_id=claimed.offer_id) == expected[0]
        # the same statement with other values is not taken for the one sent ahead
        assert transaction.one_or_none(offer, offer_id="ofr_unknown") is None
        assert transaction.execute(RENAME, offer_id=claimed.offer_id, to="After") == 1
        assert transaction.scalar(TITLE, offer_id=claimed.offer_id) == "After"
    assert _title(db, claimed.offer_id) == "After"


def test_the_offer_of_a_code_reads_as_sqlalchemy_reads_it(db: Database, claimed: Claimed) -> None:
    digest = _digest(db, claimed.code_id)
    row = _same_as_sqlalchemy(db, counter_sql.OFFER_OF_CODE.statement, digest=digest)
    assert row.id == claimed.offer_id


@pytest.mark.parametrize("fails", [False, True])
@pytest.mark.parametrize("work", ["lean", "one statement"])
def test_a_lean_transaction_hands_its_connection_back_as_lent(
    db: Database, claimed: Claimed, fails: bool, work: str
) -> None:
    """On PostgreSQL a lean transaction sends BEGIN and COMMIT itself in autocommit mode, and
    one statement (`Database.one_statement`) runs in autocommit: the pool gets the connection
    back idle and out of autocommit, so an ORM session on it still commits only when told."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite's lean transactions use the connection's own mode")
    title = _title(db, claimed.offer_id)
    lent = db.lean(write=True) if work == "lean" else db.one_statement()
    with pytest.raises(RuntimeError) if fails else nullcontext(), lent as tx:
        tx.send(RENAME, offer_id=claimed.offer_id, to="Lean")
        if fails:
            raise RuntimeError("undo")
    raw = db.engine.raw_connection()
    try:
        assert raw.driver_connection.autocommit is False
        assert raw.driver_connection.info.transaction_status.name == "IDLE"
    finally:
        raw.close()
    assert _title(db, claimed.offer_id) == (title if fails else "Lean")


def test_a_read_asked_again_and_again_is_prepared_once_on_postgresql(pg_db: Database) -> None:
    """Read sessions end with a COMMIT on PostgreSQL: psycopg prepares a statement run often
    enough on a connection, and forgets them all at a ROLLBACK, so a read session that
    rolled back would plan every search afresh."""
    url = pg_db.engine.url.render_as_string(hide_password=False)
    db = Database.from_url(url, pool_size=1, max_overflow=0)
    asked = text("SELECT count(*) FROM merchants WHERE id <> :id")
    try:
        for _ in range(8):
            with db.reading() as session:
                session.execute(asked, {"id": "mer_none"}).scalar()
        with db.reading() as session:
            plans = session.execute(
                text(
                    "SELECT generic_plans + custom_plans FROM pg_prepared_statements"
                    " WHERE statement LIKE 'SELECT count(*) FROM merchants%'"
                )
            ).scalar()
        assert plans is not None and plans >= 3
    finally:
        db.dispose()


def test_a_read_session_refuses_a_write_on_postgresql(pg_db: Database) -> None:
    """A read session's transaction is READ ONLY on PostgreSQL, so ending it with a COMMIT
    can never keep a write: PostgreSQL itself refuses one."""
    with pytest.raises(DBAPIError, match="read-only transaction"), pg_db.reading() as session:
        session.execute(text("UPDATE merchants SET name = name"))
