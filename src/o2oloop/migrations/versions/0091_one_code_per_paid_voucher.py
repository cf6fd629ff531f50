"""one code per paid voucher, found by its payment

Revision ID: 0091
Revises: 0006
Create Date: 2026-12-01 23:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0091"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The code is issued by a handler of PaymentSucceeded, which may run again: it looks
    # for the payment's code first, and the database refuses a second one.
    op.create_index(
        "ix_codes_payment_intent",
        "codes",
        ["payment_intent_id"],
        unique=True,
        sqlite_where=sa.text("payment_intent_id IS NOT NULL"),
        postgresql_where=sa.text("payment_intent_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_codes_payment_intent", table_name="codes")
