"""a store's redemptions of an offer counted in shards, one per group of tills

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("offer_store_redemptions", recreate="always") as batch:
        batch.add_column(sa.Column("shard", sa.SmallInteger(), nullable=False, server_default="0"))
        batch.drop_constraint("pk_offer_store_redemptions", type_="primary")
        batch.create_primary_key("pk_offer_store_redemptions", ["offer_id", "store_id", "shard"])


def downgrade() -> None:
    op.execute(
        "UPDATE offer_store_redemptions SET redeemed = (SELECT sum(other.redeemed) "
        "FROM offer_store_redemptions AS other "
        "WHERE other.offer_id = offer_store_redemptions.offer_id "
        "AND other.store_id = offer_store_redemptions.store_id) WHERE shard = 0"
    )
    op.execute(
        "INSERT INTO offer_store_redemptions (offer_id, store_id, shard, redeemed) "
        "SELECT offer_id, store_id, 0, sum(redeemed) FROM offer_store_redemptions "
        "GROUP BY offer_id, store_id HAVING min(shard) > 0"
    )
    op.execute("DELETE FROM offer_store_redemptions WHERE shard <> 0")
    with op.batch_alter_table("offer_store_redemptions", recreate="always") as batch:
        batch.drop_constraint("pk_offer_store_redemptions", type_="primary")
        batch.create_primary_key("pk_offer_store_redemptions", ["offer_id", "store_id"])
        batch.drop_column("shard")
