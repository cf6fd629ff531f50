"""channels: the latest rating of each review, summed into store_ratings

Revision ID: 0064
Revises: 0063 (and needs 0040, the reviews)
Create Date: 2026-12-02 00:35:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0064"
down_revision = "0063"
branch_labels = None
depends_on = "0040"  # the reviews table it fills from


def upgrade() -> None:
    op.create_table(
        "store_review_ratings",
        sa.Column("review_id", sa.String(length=32), nullable=False),
        sa.Column("store_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_store_review_ratings_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("review_id", name=op.f("pk_store_review_ratings")),
    )
    op.create_index(op.f("ix_store_review_ratings_store_id"), "store_review_ratings", ["store_id"])
    # Reviews posted before this table existed: their current ratings, and each store's mean.
    op.execute(
        "INSERT INTO store_review_ratings (review_id, store_id, version, rating)"
        " SELECT id, store_id, version, rating FROM reviews"
    )
    op.execute("DELETE FROM store_ratings")
    op.execute(
        "INSERT INTO store_ratings (store_id, average, count, updated_at)"
        " SELECT store_id, AVG(rating * 1.0), COUNT(*), CURRENT_TIMESTAMP"
        " FROM store_review_ratings GROUP BY store_id"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_store_review_ratings_store_id"), table_name="store_review_ratings")
    op.drop_table("store_review_ratings")
