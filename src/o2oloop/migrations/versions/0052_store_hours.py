"""The dashboard's hourly aggregate per store (kept by the worker's handlers), and
redemptions by store and time so a handler recounts one hour from an index; member scores
by segment with their values (the segment sizes read only the index) and by as-of time.

Existing visits are counted into it by `o2oloop dashboard rebuild`.

Revision ID: 0052
Revises: 0051 (needs 0008)
Create Date: 2026-12-01 23:10:00
"""

import sqlalchemy as sa
from alembic import op

import o2oloop.db

revision = "0052"
down_revision = "0051"
branch_labels = None
depends_on = "0008"


def upgrade() -> None:
    op.create_table(
        "store_hours",
        sa.Column("store_id", sa.String(length=32), nullable=False),
        sa.Column("starts_at", o2oloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("merchant_id", sa.String(length=32), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Integer(), nullable=False),
        sa.Column("redemptions", sa.Integer(), nullable=False),
        sa.Column("new_members", sa.Integer(), nullable=False),
        sa.Column("returning_members", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"]),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"]),
        sa.PrimaryKeyConstraint("store_id", "starts_at"),
    )
    op.create_index("ix_store_hours_merchant_starts", "store_hours", ["merchant_id", "starts_at"])
    op.create_index("ix_redemptions_store_redeemed_at", "redemptions", ["store_id", "redeemed_at"])
    op.create_index(
        "ix_member_scores_merchant_segment_value",
        "member_scores",
        ["merchant_id", "segment", "clv", "p_alive"],
    )
    op.create_index("ix_member_scores_merchant_as_of", "member_scores", ["merchant_id", "as_of"])


def downgrade() -> None:
    op.drop_index("ix_member_scores_merchant_as_of", table_name="member_scores")
    op.drop_index("ix_member_scores_merchant_segment_value", table_name="member_scores")
    op.drop_index("ix_redemptions_store_redeemed_at", table_name="redemptions")
    op.drop_index("ix_store_hours_merchant_starts", table_name="store_hours")
    op.drop_table("store_hours")
