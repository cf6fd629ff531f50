"""a campaign's pending targets are read in id order from their index

Revision ID: 0072
Revises: 0071
Create Date: 2026-12-07 23:20:00
"""

from alembic import op

revision = "0072"
down_revision = "0071"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A send batch takes the next pending targets of a campaign in id order: with the id in
    # the index it stops after the batch, instead of reading and sorting every pending
    # target of the campaign (on disk, at 100,000) on every batch.
    op.drop_index("ix_campaign_targets_campaign_state", table_name="campaign_targets")
    op.create_index(
        "ix_campaign_targets_campaign_state",
        "campaign_targets",
        ["campaign_id", "state", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_campaign_targets_campaign_state", table_name="campaign_targets")
    op.create_index(
        "ix_campaign_targets_campaign_state", "campaign_targets", ["campaign_id", "state"]
    )
