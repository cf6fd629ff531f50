"""channels: the offers' columns nearby search ranks by in one index, and a partial index
of the offers limited to some stores

Revision ID: 0065
Revises: 0064
Create Date: 2026-12-07 12:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0065"
down_revision = "0064"
branch_labels = None
depends_on = None

NEARBY_COLUMNS = (
    "merchant_id", "state", "kind", "valid_from", "valid_until", "id", "discount_kind",
    "amount_off", "discount_cap", "min_spend", "percent_off_bps", "face_value", "price",
)  # fmt: skip


def upgrade() -> None:
    op.create_index("ix_offers_nearby", "offers", list(NEARBY_COLUMNS))
    op.create_index(
        "ix_offers_limited_to_stores",
        "offers",
        ["merchant_id", "id"],
        sqlite_where=sa.text("json_type(store_ids) = 'array'"),
        postgresql_where=sa.text("json_typeof(store_ids) = 'array'"),
    )


def downgrade() -> None:
    op.drop_index("ix_offers_limited_to_stores", table_name="offers")
    op.drop_index("ix_offers_nearby", table_name="offers")
