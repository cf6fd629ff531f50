"""terminal pairing codes

Revision ID: 0080
Revises: 0001
Create Date: 2026-12-01 20:10:00
"""

import sqlalchemy as sa
from alembic import op

import o2oloop.db

revision = "0080"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "terminal_pairings",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", sa.String(length=32), nullable=False),
        sa.Column("terminal_id", sa.String(length=32), nullable=False),
        sa.Column("code_digest", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("created_at", o2oloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", o2oloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", o2oloop.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("api_key_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("fk_terminal_pairings_api_key_id_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_terminal_pairings_merchant_id_merchants"),
        ),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["terminals.id"],
            name=op.f("fk_terminal_pairings_terminal_id_terminals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terminal_pairings")),
        sa.UniqueConstraint("code_digest", name=op.f("uq_terminal_pairings_code_digest")),
    )
    op.create_index(op.f("ix_terminal_pairings_merchant_id"), "terminal_pairings", ["merchant_id"])
    op.create_index(op.f("ix_terminal_pairings_terminal_id"), "terminal_pairings", ["terminal_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_terminal_pairings_terminal_id"), table_name="terminal_pairings")
    op.drop_index(op.f("ix_terminal_pairings_merchant_id"), table_name="terminal_pairings")
    op.drop_table("terminal_pairings")
