"""The one statement a nearby page costs: the database ranks, Python reads one page.

The stores within the radius come from `store_cells`' covering index alone (cell, the
store's merchant and its unit-sphere point: the squared chord is plain arithmetic both
databases do). Each merchant's nearest store meets that merchant's published offers through
`ix_offers_nearby`, which holds every column the ranking reads (each offer's value is
computed in SQL as `nearby.value_of` does; only a stored-value card's tiers are read from
its row), so no offer row is visited but the page's. Offers limited to some stores are
few and found through their own partial index, `ix_offers_limited_to_stores`; they look
for their nearest allowed store. The cursor's key cuts what came before and only `LIMIT`
rows come back, joined to their rows for display and for what may have changed (store and
merchant active, stock): nothing is cached but the statements' text. On PostgreSQL, sorted
by distance or rating, the merchants are ranked first and probed in that order until a
page is full (`_ordered_page`); by value every merchant in the disc is. The dialects differ
in their JSON functions, their "least row per group", and how each is told to read the
offers by merchant (PostgreSQL estimates the merchants in the disc at a guess and would
scan every offer otherwise; SQLite is pointed at the partial index it would not pick).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import BigInteger, Float, Integer, String, TextClause, bindparam, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import BindParameter

from o2oloop.db import UTCDateTime
from o2oloop.offers.models import DiscountKind, OfferKind, OfferState

Sort = Literal["distance", "value", "rating"]

_D2 = "((c.x - :x) * (c.x - :x) + (c.y - :y) * (c.y - :y) + (c.z - :z) * (c.z - :z))"

_BONUS = {
    "sqlite": "(SELECT COALESCE(MAX(CAST(json_extract(t.value, '$.bonus') AS INTEGER)), 0)"
    " FROM json_each(tv.topup_tiers) t)",
    "postgresql": "(SELECT COALESCE(MAX(CAST(t ->> 'bonus' AS BIGINT)), 0)"
    " FROM json_array_elements(tv.topup_tiers) t)",
}
_IS_ARRAY = {
    "sqlite": "COALESCE(json_type({column}), 'null') = 'array'",
    "postgresql": "COALESCE(json_typeof({column}), 'null') = 'array'",
}
_VALID_AT = {  # the offer is valid at the pair's store (no list: at every store)
    "sqlite": "EXISTS (SELECT 1 FROM json_each(o.store_ids) j WHERE j.value = n.store_id)",
    "postgresql": "jsonb_exists(CAST(o.store_ids AS jsonb), n.store_id)",
}
_GREATEST = {"sqlite": "MAX", "postgresql": "GREATEST"}
# The partial index's own condition, word for word, so both databases can use it.
_LIMITED = {
    "sqlite": "json_type(o.store_ids) = 'array'",
    "postgresql": "json_typeof(o.store_ids) = 'array'",
}
_LIMITED_INDEX = {"sqlite": "INDEXED BY ix_offers_limited_to_stores", "postgresql": ""}
# A merchant's published offers valid at every store, from `ix_offers_nearby` alone: on
# PostgreSQL a lateral subquery behind OFFSET 0, so each merchant probes the index.
_MERCHANT_OFFERS = {
    "sqlite": """CROSS JOIN offers o
        WHERE o.merchant_id = nm.merchant_id AND {terms}
            AND o.id NOT IN (SELECT offer_id FROM limited)""",
    "postgresql": """CROSS JOIN LATERAL (
            SELECT o.id, o.kind, o.discount_kind, o.amount_off, o.discount_cap, o.min_spend,
                o.percent_off_bps, o.face_value, o.price
            FROM offers o
            WHERE o.merchant_id = nm.merchant_id AND {terms}
                AND o.id NOT IN (SELECT offer_id FROM limited)
            OFFSET 0) o""",
}


def _value(dialect: str) -> str:
    """The offer's value in minor units; mirrors `nearby.value_of`.

    Everything but a stored-value card's tiers is in the index; those are read from the
    card's own row (by primary key), so other offers need no row at all.
    """
    is_array = _IS_ARRAY[dialect].format(column="tv.topup_tiers")
    return f"""CASE o.kind
        WHEN '{OfferKind.COUPON.value}' THEN CASE
            WHEN o.discount_kind = '{DiscountKind.AMOUNT_OFF.value}' THEN COALESCE(o.amount_off, 0)
            WHEN COALESCE(o.discount_cap, 0) <> 0 THEN o.discount_cap
            ELSE COALESCE(o.min_spend, 0) * COALESCE(o.percent_off_bps, 0) / 10000 END
        WHEN '{OfferKind.VOUCHER.value}' THEN
            {_GREATEST[dialect]}(0, COALESCE(o.face_value, 0) - COALESCE(o.price, 0))
        WHEN '{OfferKind.STORED_VALUE.value}' THEN (SELECT
            CASE WHEN {is_array} THEN {_BONUS[dialect]} ELSE 0 END
            FROM offers tv WHERE tv.id = o.id)
        ELSE 0 END"""


_ORDER = {
    "distance": "d2, offer_id",
    "value": "value DESC, d2, offer_id",
    "rating": "rating DESC, d2, offer_id",
}
_AFTER = {
    "distance": "(d2 > :k_d2 OR (d2 = :k_d2 AND offer_id > :k_id))",
    "value": "(value < :k_first OR (value = :k_first AND "
    "(d2 > :k_d2 OR (d2 = :k_d2 AND offer_id > :k_id))))",
    "rating": "(rating < :k_first OR (rating = :k_first AND "
    "(d2 > :k_d2 OR (d2 = :k_d2 AND offer_id > :k_id))))",
}


def _nearest(
    dialect: str, source: str, group: str, columns: str, where: str, *, of: str = ""
) -> str:
    """One row per `group`: the one with the least d2 (on a tie, the smaller store id on
    PostgreSQL, either on SQLite); `of` names where d2 and store_id come from."""
    d2, store = f"{of}d2", f"{of}store_id"
    if dialect == "postgresql":
        return (
            f"SELECT DISTINCT ON ({group}) {columns}, {d2} AS d2 FROM {source} WHERE {where}"
            f" ORDER BY {group}, {d2}, {store}"
        )
    # SQLite takes the other columns of an aggregate query from the row MIN() chose.
    return f"SELECT {columns}, MIN({d2}) AS d2 FROM {source} WHERE {where} GROUP BY {group}"


# The cells travel as one value (a JSON array on SQLite, an array on PostgreSQL), so a
# statement's text is the same whatever their number: SQLite keeps it prepared, and
# psycopg prepares it on the server after a few runs (planning cost more than running).
_IN_CELLS = {
    "sqlite": "c.cell IN (SELECT value FROM json_each(:cells))",
    "postgresql": "c.cell = ANY(:cells)",
}
_CELLS_TYPE = {"sqlite": String(), "postgresql": postgresql.ARRAY(BigInteger())}


def cells_value(dialect: str, cells: list[int]) -> Any:
    """The `:cells` parameter as the dialect's statements take it."""
    return json.dumps(cells) if dialect == "sqlite" else cells


def _cells(dialect: str, only_stores: bool, excluded: bool) -> str:
    """The stores in the cells within the chord, from the covering index alone."""
    return f"""SELECT c.store_id AS store_id, c.merchant_id AS merchant_id, {_D2} AS d2
        FROM store_cells c
        WHERE {_IN_CELLS[dialect]} AND {_D2} <= :max_d2
        {"AND c.store_id IN :stores" if only_stores else ""}
        {"AND c.store_id NOT IN :excluded" if excluded else ""}"""


def _common_binds(dialect: str) -> list[BindParameter[Any]]:
    return [
        bindparam("cells", type_=_CELLS_TYPE[dialect]),
        bindparam("x", type_=Float()),
        bindparam("y", type_=Float()),
        bindparam("z", type_=Float()),
        bindparam("max_d2", type_=Float()),
    ]


def _offer_terms(kind: bool) -> str:
    return f"""o.state = '{OfferState.PUBLISHED.value}'
            AND (o.valid_until IS NULL OR o.valid_until > :now)
            AND (o.valid_from IS NULL OR o.valid_from <= :now)
            {"AND o.kind = :kind" if kind else ""}"""


def _per_merchant(dialect: str, category: bool) -> str:
    """Each merchant's nearest store in the disc (of the asked category)."""
    in_category = (
        "JOIN merchants m ON m.id = near.merchant_id AND m.category = :category" if category else ""
    )
    # PostgreSQL groups by the bytes: the database's collation would only make it slower.
    group = 'near.merchant_id COLLATE "C"' if dialect == "postgresql" else "near.merchant_id"
    return _nearest(
        dialect,
        f"near {in_category}",
        group,
        "near.merchant_id AS merchant_id, near.store_id AS store_id",
        "1 = 1",
        of="near.",
    )


def _limited(dialect: str) -> str:
    return f"""SELECT o.id AS offer_id FROM offers o {_LIMITED_INDEX[dialect]}
        WHERE o.merchant_id IN (SELECT merchant_id FROM nm) AND {_LIMITED[dialect]}"""


def _limited_best(dialect: str, terms: str) -> str:
    """Offers limited to some stores, each at its nearest allowed store in the disc."""
    allowed_stores = f"FROM near n WHERE n.merchant_id = o.merchant_id AND {_VALID_AT[dialect]}"
    return f"""SELECT o.id AS offer_id,
            (SELECT n.store_id {allowed_stores} ORDER BY n.d2, n.store_id LIMIT 1) AS store_id,
            {_value(dialect)} AS value, (SELECT MIN(n.d2) {allowed_stores}) AS d2
        FROM limited JOIN offers o ON o.id = limited.offer_id
        WHERE {terms}"""


_SHOWN = """SELECT page.offer_id AS id, page.store_id, page.d2, page.value, page.rating,
        o.merchant_id, o.kind, o.title, o.currency, o.discount_kind, o.amount_off,
        o.percent_off_bps, o.price, o.face_value, o.total_stock, o.issued_count,
        s.name AS store_name, s.latitude, s.longitude, s.timezone,
        CAST(s.opening_hours AS TEXT) AS opening_hours, m.category,
        s.active AS store_active, m.active AS merchant_active
    FROM page
    JOIN offers o ON o.id = page.offer_id
    JOIN stores s ON s.id = page.store_id
    JOIN merchants m ON m.id = s.merchant_id
    ORDER BY {order}"""


def _ranked_page(dialect: str, sort: Sort, terms: str, after: bool) -> str:
    """Every merchant's offers at its nearest store, ranked, past the cursor, `:n` of them.

    Offers valid at every store of their merchant (most) take the merchant's nearest store:
    one row per merchant joined to its offers, no row per (offer, store).
    """
    rating = "COALESCE(r.average, -1.0)" if sort == "rating" else "-1.0"
    ratings = "LEFT JOIN store_ratings r ON r.store_id = best.store_id" if sort == "rating" else ""
    return f"""best AS (
        SELECT o.id AS offer_id, nm.store_id AS store_id, {_value(dialect)} AS value,
            nm.d2 AS d2
        FROM nm {_MERCHANT_OFFERS[dialect].format(terms=terms)}
        UNION ALL
        {_limited_best(dialect, terms)}
    ),
    rated AS (
        SELECT best.*, {rating} AS rating FROM best {ratings} WHERE best.store_id IS NOT NULL
    ),
    page AS (
        SELECT offer_id, store_id, d2, value, rating FROM rated
        {"WHERE " + _AFTER[sort] if after else ""}
        ORDER BY {_ORDER[sort]}
        LIMIT :n
    )"""


# Where a merchant's offers can start, given the cursor: every offer of the merchant shares
# its store's distance (and rating), so a merchant wholly before the cursor is not probed.
_MERCHANT_AFTER = {
    "distance": "nm.d2 >= :k_d2",
    "rating": "(COALESCE(r.average, -1.0) < :k_first"
    " OR (COALESCE(r.average, -1.0) = :k_first AND nm.d2 >= :k_d2))",
}


def _ordered_page(sort: Sort, terms: str, after: bool) -> str:
    """PostgreSQL, by distance or rating: the merchants in page order, probed in turn.

    A merchant's offers share its nearest store's distance and rating, so with the merchants
    sorted first the database sorts each merchant's few offers by id as they come
    (an incremental sort) and stops probing once a page is full: a page costs the probes of
    the merchants on it, not of every merchant in the disc. The few offers limited to some
    stores are ranked on their own and the two pages merged.
    """
    first = "rating DESC, d2" if sort == "rating" else "d2"
    rating = "COALESCE(r.average, -1.0)" if sort == "rating" else "-1.0"
    ratings = "LEFT JOIN store_ratings r ON r.store_id = {of}.store_id" if sort == "rating" else ""
    cut = "WHERE " + _AFTER[sort] if after else ""
    return f"""ranked AS (
        SELECT nm.merchant_id, nm.store_id, nm.d2, {rating} AS rating
        FROM nm {ratings.format(of="nm")}
        {"WHERE " + _MERCHANT_AFTER[sort] if after else ""}
        ORDER BY {first}
    ),
    main AS (
        SELECT o.id AS offer_id, ranked.store_id, {_value("postgresql")} AS value, ranked.d2,
            ranked.rating
        FROM ranked {_MERCHANT_OFFERS["postgresql"].format(terms=terms).replace("nm.", "ranked.")}
    ),
    extra AS (
        SELECT x.*, {rating} AS rating
        FROM ({_limited_best("postgresql", terms)}) x {ratings.format(of="x")}
        WHERE x.store_id IS NOT NULL
    ),
    page AS (
        (SELECT * FROM main {cut} ORDER BY {_ORDER[sort]} LIMIT :n)
        UNION ALL
        (SELECT * FROM extra {cut} ORDER BY {_ORDER[sort]} LIMIT :n)
        ORDER BY {_ORDER[sort]}
        LIMIT :n
    )"""


@lru_cache(maxsize=128)
def page_statement(
    dialect: str,
    sort: Sort,
    *,
    category: bool,
    kind: bool,
    only_stores: bool,
    excluded: bool,
    after: bool,
) -> TextClause:
    """Offers in the cells at their nearest store, past the cursor, in order, `:n` of them.

    An offer limited to some stores looks for its nearest allowed one among the merchant's
    stores in the disc (`CROSS JOIN` keeps SQLite's join order: merchants in the disc, then
    their offers).
    """
    terms = _offer_terms(kind)
    if dialect == "postgresql" and sort != "value":
        ranking = _ordered_page(sort, terms, after)
    else:
        ranking = _ranked_page(dialect, sort, terms, after)
    sql = f"""WITH near AS ({_cells(dialect, only_stores, excluded)}),
    nm AS ({_per_merchant(dialect, category)}),
    limited AS ({_limited(dialect)}),
    {ranking}
    {_SHOWN.format(order=_ORDER[sort].replace("offer_id", "page.offer_id"))}"""
    binds = [
        *_common_binds(dialect),
        bindparam("now", type_=UTCDateTime()),
        bindparam("n", type_=Integer()),
    ]
    if category:
        binds.append(bindparam("category", type_=String()))
    if kind:
        binds.append(bindparam("kind", type_=String()))
    if only_stores:
        binds.append(bindparam("stores", expanding=True, type_=String()))
    if excluded:
        binds.append(bindparam("excluded", expanding=True, type_=String()))
    if after:
        if sort != "distance":
            binds.append(bindparam("k_first", type_=Float()))
        binds += [bindparam("k_d2", type_=Float()), bindparam("k_id", type_=String())]
    return text(sql).bindparams(*binds)


@lru_cache(maxsize=8)
def stores_statement(dialect: str, *, category: bool, hours: bool) -> TextClause:
    """The stores themselves, within the chord (for open-now, and the radius property)."""
    sql = f"""SELECT s.id, s.merchant_id, s.name, s.latitude, s.longitude, s.timezone,
            m.category{", CAST(s.opening_hours AS TEXT) AS opening_hours" if hours else ""}
        FROM store_cells c
        JOIN stores s ON s.id = c.store_id
        JOIN merchants m ON m.id = s.merchant_id
        WHERE {_IN_CELLS[dialect]} AND {_D2} <= :max_d2 AND s.active AND m.active
        {"AND m.category = :category" if category else ""}"""
    binds = _common_binds(dialect)
    if category:
        binds.append(bindparam("category", type_=String()))
    return text(sql).bindparams(*binds)
