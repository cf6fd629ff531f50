"""the sandbox provider dedupes requests by their idempotency key

Revision ID: 0090
Revises: 0003
Create Date: 2026-12-01 23:30:00
"""

from alembic import op

revision = "0090"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A charge, refund or payout asked for twice with one key (a job run again after a
    # crash) is one object at the provider.
    op.create_index(
        "ix_sandbox_provider_records_key",
        "sandbox_provider_records",
        ["object", "reference"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ix_sandbox_provider_records_key", table_name="sandbox_provider_records")
