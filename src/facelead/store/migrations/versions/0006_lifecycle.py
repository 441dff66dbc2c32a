# mypy: ignore-errors
"""Gallery lifecycle: import_items, gallery_tombstones, tombstone_photos, retention_actions,
gallery_settings.

Revision ID: 0006_lifecycle
Revises: 0001_gallery
Create Date: 2025-01-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_lifecycle"
down_revision = "0001_gallery"
branch_labels = ("lifecycle",)
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "import_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_key", sa.String(64), nullable=False),
        sa.Column("source", sa.String(512), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("code", sa.String(64), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("subject_external_id", sa.String(64), nullable=True),
        sa.Column("image_sha256", sa.String(64), nullable=True),
        sa.Column("photo_id", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_import_items"),
        sa.UniqueConstraint("item_key", name="uq_import_items_item_key"),
    )
    op.create_index("ix_import_items_status", "import_items", ["status"])
    op.create_index("ix_import_items_code", "import_items", ["code"])
    op.create_index("ix_import_items_image_sha256", "import_items", ["image_sha256"])
    op.create_table(
        "gallery_tombstones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("order_ref", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("subject_hash", sa.String(64), nullable=False),
        sa.Column("bookings", sa.Integer(), nullable=False),
        sa.Column("photos", sa.Integer(), nullable=False),
        sa.Column("templates", sa.Integer(), nullable=False),
        sa.Column("removed_by_username", sa.String(128), nullable=False),
        sa.Column("removed_by_user_id", sa.Integer(), nullable=True),
        _ts("removed_at"),
        sa.PrimaryKeyConstraint("id", name="pk_gallery_tombstones"),
        sa.UniqueConstraint("subject_hash", "order_ref", name="uq_gallery_tombstones_subject_hash"),
    )
    op.create_index("ix_gallery_tombstones_subject_hash", "gallery_tombstones", ["subject_hash"])
    op.create_table(
        "tombstone_photos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tombstone_id", sa.Integer(), nullable=False),
        sa.Column("image_sha256", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tombstone_photos"),
        sa.ForeignKeyConstraint(
            ["tombstone_id"],
            ["gallery_tombstones.id"],
            name="fk_tombstone_photos_tombstone_id_gallery_tombstones",
        ),
    )
    op.create_index("ix_tombstone_photos_tombstone_id", "tombstone_photos", ["tombstone_id"])
    op.create_index("ix_tombstone_photos_image_sha256", "tombstone_photos", ["image_sha256"])
    op.create_table(
        "retention_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("probe_sha256", sa.String(64), nullable=False),
        sa.Column("probe_file_deleted", sa.Boolean(), nullable=False),
        sa.Column("candidates_deleted", sa.Integer(), nullable=False),
        sa.Column("dispositions_deleted", sa.Integer(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("applied_by_username", sa.String(128), nullable=False),
        _ts("applied_at"),
        sa.PrimaryKeyConstraint("id", name="pk_retention_actions"),
        sa.UniqueConstraint("search_id", name="uq_retention_actions_search_id"),
    )
    op.create_index("ix_retention_actions_probe_sha256", "retention_actions", ["probe_sha256"])
    op.create_table(
        "gallery_settings",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.Column("updated_by_username", sa.String(128), nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("key", name="pk_gallery_settings"),
    )


def downgrade() -> None:
    op.drop_table("gallery_settings")
    op.drop_index("ix_retention_actions_probe_sha256", table_name="retention_actions")
    op.drop_table("retention_actions")
    op.drop_index("ix_tombstone_photos_image_sha256", table_name="tombstone_photos")
    op.drop_index("ix_tombstone_photos_tombstone_id", table_name="tombstone_photos")
    op.drop_table("tombstone_photos")
    op.drop_index("ix_gallery_tombstones_subject_hash", table_name="gallery_tombstones")
    op.drop_table("gallery_tombstones")
    op.drop_index("ix_import_items_image_sha256", table_name="import_items")
    op.drop_index("ix_import_items_code", table_name="import_items")
    op.drop_index("ix_import_items_status", table_name="import_items")
    op.drop_table("import_items")
