"""indexes for the counter: rejected attempts per terminal, a customer's redemptions

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 14:00:00
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_redemption_attempts_terminal_at", table_name="redemption_attempts")
    op.create_index(
        "ix_redemption_attempts_terminal_accepted_at",
        "redemption_attempts",
        ["terminal_id", "accepted", "at"],
    )
    op.drop_index("ix_redemptions_consumer_id", table_name="redemptions")
    op.create_index(
        "ix_redemptions_consumer_merchant_offer",
        "redemptions",
        ["consumer_id", "merchant_id", "offer_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_redemptions_consumer_merchant_offer", table_name="redemptions")
    op.create_index("ix_redemptions_consumer_id", "redemptions", ["consumer_id"])
    op.drop_index("ix_redemption_attempts_terminal_accepted_at", table_name="redemption_attempts")
    op.create_index(
        "ix_redemption_attempts_terminal_at", "redemption_attempts", ["terminal_id", "at"]
    )
