# mypy: ignore-errors
"""Gallery: subjects, bookings, photos, templates, index_state.

Revision ID: 0001_gallery
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_gallery"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "subjects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(64), nullable=False),
        _ts("created_at"),
        _ts("sealed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_subjects"),
        sa.UniqueConstraint("external_id", name="uq_subjects_external_id"),
    )
    op.create_table(
        "bookings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("booking_number", sa.String(64), nullable=False),
        sa.Column("booking_date", sa.Date(), nullable=True),
        sa.Column("agency", sa.String(128), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_bookings"),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name="fk_bookings_subject_id_subjects"
        ),
        sa.UniqueConstraint("booking_number", name="uq_bookings_booking_number"),
    )
    op.create_index("ix_bookings_subject_id", "bookings", ["subject_id"])
    op.create_table(
        "photos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("image_sha256", sa.String(64), nullable=False),
        sa.Column("view", sa.String(16), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("face_box", sa.JSON(), nullable=False),
        sa.Column("landmarks", sa.JSON(), nullable=False),
        sa.Column("quality", sa.JSON(), nullable=False),
        sa.Column("source_name", sa.String(512), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_photos"),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name="fk_photos_subject_id_subjects"
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["bookings.id"], name="fk_photos_booking_id_bookings"
        ),
        sa.UniqueConstraint("image_sha256", name="uq_photos_image_sha256"),
    )
    op.create_index("ix_photos_subject_id", "photos", ["subject_id"])
    op.create_index("ix_photos_booking_id", "photos", ["booking_id"])
    op.create_table(
        "templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("photo_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(64), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_templates"),
        sa.ForeignKeyConstraint(["photo_id"], ["photos.id"], name="fk_templates_photo_id_photos"),
        sa.UniqueConstraint("photo_id", "model_id", name="uq_templates_photo_id"),
    )
    op.create_index("ix_templates_photo_id", "templates", ["photo_id"])
    op.create_index("ix_templates_model_id", "templates", ["model_id"])
    op.create_table(
        "index_state",
        sa.Column("model_id", sa.String(64), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", name="pk_index_state"),
    )


def downgrade() -> None:
    op.drop_table("index_state")
    op.drop_index("ix_templates_model_id", table_name="templates")
    op.drop_index("ix_templates_photo_id", table_name="templates")
    op.drop_table("templates")
    op.drop_index("ix_photos_booking_id", table_name="photos")
    op.drop_index("ix_photos_subject_id", table_name="photos")
    op.drop_table("photos")
    op.drop_index("ix_bookings_subject_id", table_name="bookings")
    op.drop_table("bookings")
    op.drop_table("subjects")
