"""the outbox of domain events and the jobs the worker runs from it

Revision ID: 0010
Revises: 0001
Create Date: 2026-12-01 19:50:00
"""

import sqlalchemy as sa
from alembic import op

import o2oloop.db

revision = "0010"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=60), nullable=False),
        sa.Column("merchant_id", sa.String(length=32), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("occurred_at", o2oloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("dispatched_at", o2oloop.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_outbox")),
    )
    op.create_index(op.f("ix_outbox_merchant_id"), "outbox", ["merchant_id"], unique=False)
    op.create_index(
        "ix_outbox_undispatched",
        "outbox",
        ["event_id"],
        unique=False,
        sqlite_where=sa.text("dispatched_at IS NULL"),
        postgresql_where=sa.text("dispatched_at IS NULL"),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("handler", sa.String(length=120), nullable=False),
        sa.Column("event_id", sa.String(length=32), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "pending", "running", "done", "dead", name="jobstate", native_enum=False, length=10
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", o2oloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", o2oloop.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.String(length=100), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", o2oloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", o2oloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", o2oloop.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("key", name=op.f("uq_jobs_key")),
    )
    op.create_index(op.f("ix_jobs_event_id"), "jobs", ["event_id"], unique=False)
    op.create_index("ix_jobs_state_run_after", "jobs", ["state", "run_after"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_jobs_state_run_after", table_name="jobs")
    op.drop_index(op.f("ix_jobs_event_id"), table_name="jobs")
    op.drop_table("jobs")
    op.drop_index("ix_outbox_undispatched", table_name="outbox")
    op.drop_index(op.f("ix_outbox_merchant_id"), table_name="outbox")
    op.drop_table("outbox")
