"""channels: store cells carry the store's merchant and unit-sphere point in a covering index

Revision ID: 0063
Revises: 0062
Create Date: 2026-12-01 23:10:00
"""

import math

import sqlalchemy as sa
from alembic import op

revision = "0063"
down_revision = "0062"
branch_labels = None
depends_on = None

POINT = ("x", "y", "z")


def upgrade() -> None:
    with op.batch_alter_table("store_cells") as batch:
        batch.add_column(sa.Column("merchant_id", sa.String(length=32), nullable=True))
        for name in POINT:
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))
    connection = op.get_bind()
    stores = connection.execute(
        sa.text("SELECT id, merchant_id, latitude, longitude FROM stores")
    ).all()
    points = []
    for store_id, merchant_id, lat, lng in stores:
        p, lam = math.radians(lat), math.radians(lng)
        points.append(
            {
                "id": store_id,
                "merchant_id": merchant_id,
                "x": math.cos(p) * math.cos(lam),
                "y": math.cos(p) * math.sin(lam),
                "z": math.sin(p),
            }
        )
    if points:
        connection.execute(
            sa.text(
                "UPDATE store_cells SET merchant_id = :merchant_id, x = :x, y = :y, z = :z"
                " WHERE store_id = :id"
            ),
            points,
        )
    with op.batch_alter_table("store_cells") as batch:
        batch.alter_column("merchant_id", existing_type=sa.String(length=32), nullable=False)
        for name in POINT:
            batch.alter_column(name, existing_type=sa.Float(), nullable=False)
        batch.create_foreign_key(
            "fk_store_cells_merchant_id_merchants", "merchants", ["merchant_id"], ["id"]
        )
    op.create_index(
        "ix_store_cells_cell_point", "store_cells", ["cell", "merchant_id", "store_id", *POINT]
    )


def downgrade() -> None:
    op.drop_index("ix_store_cells_cell_point", table_name="store_cells")
    with op.batch_alter_table("store_cells") as batch:
        batch.drop_constraint("fk_store_cells_merchant_id_merchants", type_="foreignkey")
        for name in ("z", "y", "x", "merchant_id"):
            batch.drop_column(name)
