"""ORM tables of the gallery lifecycle (migrations 0006_lifecycle, 0007_booking_tombstones).

- ``import_items``: the per-file status table that makes ``facelead import``
  resumable and idempotent; an item turns ``done`` in the same transaction as
  its enrolment and audit event.
- ``gallery_tombstones`` and ``tombstone_photos``: all that remains of a sealed,
  expunged or purged subject: the order, a keyed hash of the subject id and
  the photo hashes (which also stop the same images from being enrolled again).
- ``retention_actions``: one row per search whose probe and candidate list a
  retention run deleted; the marker that makes the run idempotent.
- ``gallery_settings``: small key/value settings the gallery needs to switch
  atomically (the active model id after re-templating).

Search ids are plain integers, not foreign keys: this branch of the schema is
independent of the cases branch (both start at 0001_gallery).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from facelead.store.models import Base, UTCDateTime, utcnow


class ImportItem(Base):
    __tablename__ = "import_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_key: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the locator
    source: Mapped[str] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending|done|refused|removed
    code: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    subject_external_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    image_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    photo_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Tombstone(Base):
    __tablename__ = "gallery_tombstones"
    __table_args__ = (UniqueConstraint("subject_hash", "order_ref", "booking_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    order_ref: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    subject_hash: Mapped[str] = mapped_column(String(64), index=True)
    # keyed hash of the booking number for a per-booking expungement, '' for a whole subject
    booking_hash: Mapped[str] = mapped_column(String(64), default="", index=True)
    bookings: Mapped[int] = mapped_column(Integer)
    photos: Mapped[int] = mapped_column(Integer)
    templates: Mapped[int] = mapped_column(Integer)
    removed_by_username: Mapped[str] = mapped_column(String(128))
    removed_by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    removed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TombstonePhoto(Base):
    __tablename__ = "tombstone_photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tombstone_id: Mapped[int] = mapped_column(ForeignKey("gallery_tombstones.id"), index=True)
    image_sha256: Mapped[str] = mapped_column(String(64), index=True)


class RetentionAction(Base):
    __tablename__ = "retention_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(Integer, unique=True)
    rule: Mapped[str] = mapped_column(String(32))
    probe_sha256: Mapped[str] = mapped_column(String(64), index=True)
    probe_file_deleted: Mapped[bool] = mapped_column(Boolean)
    candidates_deleted: Mapped[int] = mapped_column(Integer)
    dispositions_deleted: Mapped[int] = mapped_column(Integer)
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    applied_by_username: Mapped[str] = mapped_column(String(128))
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class GallerySetting(Base):
    __tablename__ = "gallery_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))
    updated_by_username: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
