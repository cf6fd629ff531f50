"""redemptions counted per offer and store instead of on the offer's row

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 21:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "offer_store_redemptions",
        sa.Column("offer_id", sa.String(length=32), nullable=False),
        sa.Column("store_id", sa.String(length=32), nullable=False),
        sa.Column("redeemed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name=op.f("fk_offer_store_redemptions_offer_id_offers")
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_offer_store_redemptions_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("offer_id", "store_id", name=op.f("pk_offer_store_redemptions")),
    )
    op.execute(
        "INSERT INTO offer_store_redemptions (offer_id, store_id, redeemed) "
        "SELECT offer_id, store_id, count(*) FROM redemptions "
        "WHERE state = 'redeemed' GROUP BY offer_id, store_id"
    )
    op.drop_column("offers", "redeemed_count")


def downgrade() -> None:
    op.add_column(
        "offers",
        sa.Column("redeemed_count", sa.Integer(), nullable=False, server_default="0"),
    )
    op.execute(
        "UPDATE offers SET redeemed_count = coalesce((SELECT sum(redeemed) "
        "FROM offer_store_redemptions WHERE offer_store_redemptions.offer_id = offers.id), 0)"
    )
    op.drop_table("offer_store_redemptions")
