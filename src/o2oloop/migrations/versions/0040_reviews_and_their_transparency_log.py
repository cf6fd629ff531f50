"""Reviews of verified visits, replies, photos, and their append-only transparency log

Revision ID: 0040
Revises: 0004
Create Date: 2026-12-01 19:50:20.218192
"""

import sqlalchemy as sa
from alembic import op

import o2oloop.db

revision = "0040"
down_revision = "0004"
branch_labels = None
depends_on = "0002"


def upgrade() -> None:
    op.create_table(
        "review_checkpoints",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("signed_at", o2oloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_checkpoints")),
    )
    with op.batch_alter_table("review_checkpoints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_review_checkpoints_signed_at"), ["signed_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_review_checkpoints_size"), ["size"], unique=False)

    op.create_table(
        "review_log_entries",
        sa.Column(
            "idx",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", o2oloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("idx", name=op.f("pk_review_log_entries")),
    )
    op.create_table(
        "review_log_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("peaks", sa.LargeBinary(), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("signed_size", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", o2oloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_log_head")),
    )
    op.create_table(
        "review_log_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_review_log_nodes")),
    )
    op.create_table(
        "reviews",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", sa.String(length=32), nullable=False),
        sa.Column("store_id", sa.String(length=32), nullable=False),
        sa.Column("visit_id", sa.String(length=32), nullable=True),
        sa.Column("redemption_id", sa.String(length=32), nullable=True),
        sa.Column("consumer_id", sa.String(length=32), nullable=True),
        sa.Column("visit_source", sa.String(length=12), nullable=False),
        sa.Column("visited_at", o2oloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("code_used", sa.Boolean(), nullable=False),
        sa.Column("campaign_code", sa.Boolean(), nullable=False),
        sa.Column("member_since", o2oloop.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("rating", sa.SmallInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("first_entry", sa.BigInteger(), nullable=False),
        sa.Column("latest_entry", sa.BigInteger(), nullable=False),
        sa.Column("posted_at", o2oloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", o2oloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consumer_id"], ["consumers.id"], name=op.f("fk_reviews_consumer_id_consumers")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_reviews_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(
            ["redemption_id"], ["redemptions.id"], name=op.f("fk_reviews_redemption_id_redemptions")
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_reviews_store_id_stores")
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visits.id"], name=op.f("fk_reviews_visit_id_visits")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
        sa.UniqueConstraint("redemption_id", name=op.f("uq_reviews_redemption_id")),
        sa.UniqueConstraint("visit_id", name=op.f("uq_reviews_visit_id")),
    )
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reviews_consumer_posted", ["consumer_id", "posted_at"], unique=False
        )
        batch_op.create_index(
            "ix_reviews_merchant_posted", ["merchant_id", "posted_at"], unique=False
        )
        batch_op.create_index("ix_reviews_store_posted", ["store_id", "posted_at"], unique=False)

    op.create_table(
        "review_replies",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("review_id", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", sa.String(length=32), nullable=False),
        sa.Column("entry", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("salt", sa.LargeBinary(length=16), nullable=True),
        sa.Column(
            "hidden_reason",
            sa.Enum(
                "illegal_content",
                "personal_data",
                "erasure_request",
                name="hidereason",
                native_enum=False,
                length=20,
            ),
            nullable=True,
        ),
        sa.Column(
            "hidden_by",
            sa.Enum(
                "platform_moderator",
                "data_subject",
                name="moderatorrole",
                native_enum=False,
                length=20,
            ),
            nullable=True,
        ),
        sa.Column("hidden_entry", sa.BigInteger(), nullable=True),
        sa.Column("created_at", o2oloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_review_replies_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(
            ["review_id"], ["reviews.id"], name=op.f("fk_review_replies_review_id_reviews")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_replies")),
        sa.UniqueConstraint("entry", name=op.f("uq_review_replies_entry")),
        sa.UniqueConstraint("review_id", name=op.f("uq_review_replies_review_id")),
    )
    with op.batch_alter_table("review_replies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_review_replies_merchant_id"), ["merchant_id"], unique=False
        )

    op.create_table(
        "review_versions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("review_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=False),
        sa.Column("entry", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("author", sa.String(length=80), nullable=True),
        sa.Column("photos", sa.JSON(), nullable=True),
        sa.Column("salt", sa.LargeBinary(length=16), nullable=True),
        sa.Column(
            "hidden_reason",
            sa.Enum(
                "illegal_content",
                "personal_data",
                "erasure_request",
                name="hidereason",
                native_enum=False,
                length=20,
            ),
            nullable=True,
        ),
        sa.Column(
            "hidden_by",
            sa.Enum(
                "platform_moderator",
                "data_subject",
                name="moderatorrole",
                native_enum=False,
                length=20,
            ),
            nullable=True,
        ),
        sa.Column("hidden_entry", sa.BigInteger(), nullable=True),
        sa.Column("created_at", o2oloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["review_id"], ["reviews.id"], name=op.f("fk_review_versions_review_id_reviews")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_versions")),
        sa.UniqueConstraint("entry", name=op.f("uq_review_versions_entry")),
        sa.UniqueConstraint(
            "review_id", "version", name=op.f("uq_review_versions_review_id_version")
        ),
    )
    with op.batch_alter_table("review_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_review_versions_review_id"), ["review_id"], unique=False
        )

    op.create_table(
        "review_photos",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("version_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("media_type", sa.String(length=20), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["review_versions.id"],
            name=op.f("fk_review_photos_version_id_review_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_photos")),
        sa.UniqueConstraint(
            "version_id", "position", name=op.f("uq_review_photos_version_id_position")
        ),
    )
    with op.batch_alter_table("review_photos", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_review_photos_version_id"), ["version_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("review_photos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_photos_version_id"))

    op.drop_table("review_photos")
    with op.batch_alter_table("review_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_versions_review_id"))

    op.drop_table("review_versions")
    with op.batch_alter_table("review_replies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_replies_merchant_id"))

    op.drop_table("review_replies")
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_index("ix_reviews_store_posted")
        batch_op.drop_index("ix_reviews_merchant_posted")
        batch_op.drop_index("ix_reviews_consumer_posted")

    op.drop_table("reviews")
    op.drop_table("review_log_nodes")
    op.drop_table("review_log_head")
    op.drop_table("review_log_entries")
    with op.batch_alter_table("review_checkpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_checkpoints_size"))
        batch_op.drop_index(batch_op.f("ix_review_checkpoints_signed_at"))

    op.drop_table("review_checkpoints")
