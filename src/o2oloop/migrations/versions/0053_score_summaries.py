"""Each merchant's scores counted by segment and CLV band (written by the analysis with the
scores), filled here from the scores already there; the two member-score indexes only the
dashboard's counts read go, so writing scores maintains two indexes fewer.

Revision ID: 0053
Revises: 0052
Create Date: 2026-12-07 11:30:00
"""

import sqlalchemy as sa
from alembic import op
from babel.numbers import get_currency_precision

import o2oloop.db

revision = "0053"
down_revision = "0052"
branch_labels = None
depends_on = None

CLV_EDGES = (0, 50, 100, 200, 500, 1000, 2000, 5000)


def _fill() -> None:
    bind = op.get_bind()
    merchants = bind.execute(
        sa.text(
            "SELECT id, currency FROM merchants WHERE id IN "
            "(SELECT DISTINCT merchant_id FROM member_scores)"
        )
    ).all()
    for merchant_id, currency in merchants:
        unit = 10 ** get_currency_precision(currency)
        highs = [edge * unit for edge in CLV_EDGES[1:]]
        band = " ".join(f"WHEN clv < {high} THEN {i}" for i, high in enumerate(highs))
        bind.execute(
            sa.text(
                "INSERT INTO score_summaries "
                "(merchant_id, segment, band, members, clv_sum, p_alive_sum, as_of) "
                "SELECT merchant_id, segment, band, count(*), sum(clv), sum(p_alive), max(as_of) "
                f"FROM (SELECT merchant_id, segment, CASE {band} ELSE {len(highs)} END AS band, "
                "clv, p_alive, as_of FROM member_scores WHERE merchant_id = :m) AS scored "
                "GROUP BY merchant_id, segment, band"
            ),
            {"m": merchant_id},
        )


def upgrade() -> None:
    op.create_table(
        "score_summaries",
        sa.Column("merchant_id", sa.String(length=32), nullable=False),
        sa.Column(
            "segment",
            sa.Enum(
                "new",
                "regular",
                "at_risk",
                "lapsed",
                "high_value",
                "coupon_only",
                "occasional",
                name="segment",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("band", sa.Integer(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("clv_sum", sa.BigInteger(), nullable=False),
        sa.Column("p_alive_sum", sa.Float(), nullable=False),
        sa.Column("as_of", o2oloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("merchant_id", "segment", "band"),
    )
    _fill()
    op.drop_index("ix_member_scores_merchant_as_of", table_name="member_scores")
    op.drop_index("ix_member_scores_merchant_segment_value", table_name="member_scores")


def downgrade() -> None:
    op.create_index(
        "ix_member_scores_merchant_segment_value",
        "member_scores",
        ["merchant_id", "segment", "clv", "p_alive"],
    )
    op.create_index("ix_member_scores_merchant_as_of", "member_scores", ["merchant_id", "as_of"])
    op.drop_table("score_summaries")
