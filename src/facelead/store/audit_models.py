"""ORM tables of the audit log: events, the chain head and signed checkpoints.

The schema is owned by migration ``0002_audit``, which also installs the
triggers that make ``audit_events`` and ``audit_checkpoints`` append-only.
Free-text columns are ``Text`` so an over-long value can never make an audit
write fail on PostgreSQL while succeeding on SQLite: a lost audit event is
worse than a long one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from facelead.store.models import Base, UTCDateTime

HEAD_ROW_ID = 1
"""The one row of ``audit_head``; locking it serialises appends."""


class AuditEvent(Base):
    """One audit event; ``hash`` chains it to its predecessor via ``prev_hash``."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(Text, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    role: Mapped[str | None] = mapped_column(Text, nullable=True)
    agency: Mapped[str | None] = mapped_column(Text, nullable=True)
    action: Mapped[str] = mapped_column(Text, index=True)
    outcome: Mapped[str] = mapped_column(Text)
    object_type: Mapped[str | None] = mapped_column(Text, nullable=True)
    object_id: Mapped[str | None] = mapped_column(Text, nullable=True, index=True)
    case_number: Mapped[str | None] = mapped_column(Text, nullable=True, index=True)
    purpose: Mapped[str | None] = mapped_column(Text, nullable=True)
    client_address: Mapped[str | None] = mapped_column(Text, nullable=True)
    interface: Mapped[str | None] = mapped_column(Text, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """The chain head (last seq and hash). A lock on this row orders concurrent appends.

    It is a convenience for writers, never trusted by verification: an
    administrator can rewrite it as easily as any other row.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """An Ed25519-signed statement of the chain head at ``seq`` (an RFC 6962-style tree head)."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, index=True)
    head_hash: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)
