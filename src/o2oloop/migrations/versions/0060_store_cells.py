"""channels: H3 cells of every store for nearby search, store ratings for sort=rating

Revision ID: 0060
Revises: 0008
Create Date: 2026-12-01 19:50:00
"""

import sqlalchemy as sa
from alembic import op

import o2oloop.db
from o2oloop.channels import geo

revision = "0060"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_cells",
        sa.Column("cell", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("store_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_store_cells_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("cell", "store_id", name=op.f("pk_store_cells")),
    )
    op.create_index(op.f("ix_store_cells_store_id"), "store_cells", ["store_id"], unique=False)
    op.create_table(
        "store_ratings",
        sa.Column("store_id", sa.String(length=32), nullable=False),
        sa.Column("average", sa.Float(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("updated_at", o2oloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_store_ratings_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("store_id", name=op.f("pk_store_ratings")),
    )
    connection = op.get_bind()
    stores = connection.execute(sa.text("SELECT id, latitude, longitude FROM stores")).all()
    rows = [
        {"cell": cell, "store_id": store_id}
        for store_id, lat, lng in stores
        for cell in geo.cells_of(lat, lng)
    ]
    if rows:
        connection.execute(
            sa.text("INSERT INTO store_cells (cell, store_id) VALUES (:cell, :store_id)"), rows
        )


def downgrade() -> None:
    op.drop_table("store_ratings")
    op.drop_index(op.f("ix_store_cells_store_id"), table_name="store_cells")
    op.drop_table("store_cells")
