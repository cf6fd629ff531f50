"""the sandbox SMS provider keeps each message's fate apart from its status

Revision ID: 0071
Revises: 0070
Create Date: 2026-12-01 20:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0071"
down_revision = "0070"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sms_sandbox_messages") as batch_op:
        batch_op.add_column(
            sa.Column("fate", sa.String(length=12), server_default="delivered", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("sms_sandbox_messages") as batch_op:
        batch_op.drop_column("fate")
