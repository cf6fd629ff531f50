"""Member scores by merchant and CLV: the console's members table pages by value without
sorting every member, and the dashboard counts CLV buckets from the index.

Revision ID: 0051
Revises: 0050 (needs 0004)
Create Date: 2026-12-01 21:00:00
"""

from alembic import op

revision = "0051"
down_revision = "0050"
branch_labels = None
depends_on = "0004"


def upgrade() -> None:
    op.create_index("ix_member_scores_merchant_clv", "member_scores", ["merchant_id", "clv"])


def downgrade() -> None:
    op.drop_index("ix_member_scores_merchant_clv", table_name="member_scores")
