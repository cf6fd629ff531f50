"""channels: closed stores and the stores of closed merchants leave the nearby index

Revision ID: 0066
Revises: 0065
Create Date: 2026-12-07 23:40:00
"""

from alembic import op

revision = "0066"
down_revision = "0065"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # From now on closing a store (or its merchant) removes its cells in the same
    # transaction; the ones closed before are removed here.
    op.execute(
        "DELETE FROM store_cells WHERE store_id IN (SELECT s.id FROM stores s"
        " JOIN merchants m ON m.id = s.merchant_id WHERE NOT s.active OR NOT m.active)"
    )


def downgrade() -> None:
    # A closed store stays out of the index: search never listed it at such a store anyway.
    pass
