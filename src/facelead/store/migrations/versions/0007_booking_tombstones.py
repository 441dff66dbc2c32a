# mypy: ignore-errors
"""Per-booking expungement: tombstones name the booking; merge of every earlier head.

A court may expunge one arrest while the subject's other bookings stay, and
one order may name several bookings of the same subject, so a tombstone is
unique per (subject hash, order, booking hash); ``booking_hash`` is '' for a
tombstone of a whole subject. This revision also joins the four branches
(audit, identity, cases/review, lifecycle) into one head.

SQLite cannot drop a table constraint, so there the table is rebuilt. Not by
Alembic's batch mode: it drops the old table after copying it, and the drop
of a table that ``tombstone_photos`` references fails the foreign-key check.
Here, inside one transaction with ``defer_foreign_keys``, the rows are set
aside, the table is dropped and created anew, and the rows go back in, which
settles every deferred reference before the commit.

Revision ID: 0007_booking_tombstones
Revises: 0002_audit, 0003_identity, 0005_review, 0006_lifecycle
Create Date: 2025-01-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_booking_tombstones"
down_revision = ("0002_audit", "0003_identity", "0005_review", "0006_lifecycle")
branch_labels = None
depends_on = None

UNIQUE = "uq_gallery_tombstones_subject_hash"  # the naming convention names it by column 0
INDEXES = {"ix_gallery_tombstones_subject_hash": "subject_hash"}
COLUMNS = (
    "id, kind, order_ref, reason, subject_hash, bookings, photos, templates, "
    "removed_by_username, removed_by_user_id, removed_at"
)


def _table(unique: list[str], booking_hash: bool) -> None:
    """gallery_tombstones as 0006_lifecycle made it, plus ``booking_hash`` if asked."""
    extra = [sa.Column("booking_hash", sa.String(64), nullable=False, server_default="")]
    op.create_table(
        "gallery_tombstones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("order_ref", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("subject_hash", sa.String(64), nullable=False),
        *(extra if booking_hash else []),
        sa.Column("bookings", sa.Integer(), nullable=False),
        sa.Column("photos", sa.Integer(), nullable=False),
        sa.Column("templates", sa.Integer(), nullable=False),
        sa.Column("removed_by_username", sa.String(128), nullable=False),
        sa.Column("removed_by_user_id", sa.Integer(), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gallery_tombstones"),
        sa.UniqueConstraint(*unique, name=UNIQUE),
    )


def _sqlite_rebuild(unique: list[str], booking_hash: bool) -> None:
    # pysqlite opens a transaction only before DML; the pragma lasts until that one ends
    op.execute("UPDATE alembic_version SET version_num = version_num WHERE 1 = 0")
    op.execute("PRAGMA defer_foreign_keys=ON")
    op.execute("CREATE TABLE _tombstones_kept AS SELECT * FROM gallery_tombstones")
    for name in INDEXES:
        op.drop_index(name, table_name="gallery_tombstones")
    op.drop_table("gallery_tombstones")
    _table(unique, booking_hash)
    op.execute(f"INSERT INTO gallery_tombstones ({COLUMNS}) SELECT {COLUMNS} FROM _tombstones_kept")
    op.drop_table("_tombstones_kept")
    for name, column in INDEXES.items():
        op.create_index(name, "gallery_tombstones", [column])


def upgrade() -> None:
    unique = ["subject_hash", "order_ref", "booking_hash"]
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_rebuild(unique, booking_hash=True)
    else:
        op.add_column(
            "gallery_tombstones",
            sa.Column("booking_hash", sa.String(64), nullable=False, server_default=""),
        )
        op.drop_constraint(UNIQUE, "gallery_tombstones", type_="unique")
        op.create_unique_constraint(UNIQUE, "gallery_tombstones", unique)
    op.create_index("ix_gallery_tombstones_booking_hash", "gallery_tombstones", ["booking_hash"])


def downgrade() -> None:
    """Refused by the database if one order removed several bookings of one subject."""
    op.drop_index("ix_gallery_tombstones_booking_hash", table_name="gallery_tombstones")
    unique = ["subject_hash", "order_ref"]
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_rebuild(unique, booking_hash=False)
    else:
        op.drop_constraint(UNIQUE, "gallery_tombstones", type_="unique")
        op.create_unique_constraint(UNIQUE, "gallery_tombstones", unique)
        op.drop_column("gallery_tombstones", "booking_hash")
