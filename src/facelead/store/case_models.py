"""ORM tables of cases and searches (migration 0004_cases).

A search row is written only when every policy rule passed, in the same
transaction as its probe row, its candidates and its audit event; a refused
request leaves none of them. Review work (dispositions, verification, lead
reports) adds its own tables keyed by ``searches.id`` and
``search_assignments.id`` rather than widening these.

Users are recorded by username and, once accounts exist, by user id; there is
deliberately no foreign key to a users table yet.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from facelead.store.models import Base, UTCDateTime, utcnow


class CaseRecord(Base):
    """A case number of one agency; searches need it open."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    agency: Mapped[str] = mapped_column(String(128))
    offence_category: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="open")
    opened_by_username: Mapped[str] = mapped_column(String(128))
    opened_by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_by_username: Mapped[str | None] = mapped_column(String(128), nullable=True)
    closed_by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    searches: Mapped[list[SearchRecord]] = relationship(
        back_populates="case", order_by="SearchRecord.id"
    )


class ProbeRecord(Base):
    """One submitted probe and its provenance; bytes live in the probe store by SHA-256.

    One row per search: the same image submitted twice may come with a
    different provenance, and each statement is kept as made.
    """

    __tablename__ = "probes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_sha256: Mapped[str] = mapped_column(String(64), index=True)
    source_type: Mapped[str] = mapped_column(String(64))
    how_obtained: Mapped[str] = mapped_column(Text)
    captured_by: Mapped[str] = mapped_column(String(256))
    edits: Mapped[list[str]] = mapped_column(JSON)
    image_format: Mapped[str] = mapped_column(String(16))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class QualityOverride(Base):
    """A supervisor's approval to search one below-floor probe once, for one requester and case."""

    __tablename__ = "quality_overrides"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    probe_sha256: Mapped[str] = mapped_column(String(64), index=True)
    requester_username: Mapped[str] = mapped_column(String(128))
    supervisor_username: Mapped[str] = mapped_column(String(128))
    supervisor_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    justification: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SearchRecord(Base):
    """One policy-checked 1:N search; ``status`` follows domain.cases.TRANSITIONS."""

    __tablename__ = "searches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    probe_id: Mapped[int] = mapped_column(ForeignKey("probes.id"), unique=True)
    requester_username: Mapped[str] = mapped_column(String(128), index=True)
    requester_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    requester_agency: Mapped[str] = mapped_column(String(128))
    purpose: Mapped[str] = mapped_column(String(64))
    justification: Mapped[str] = mapped_column(Text)
    model_id: Mapped[str] = mapped_column(String(64))
    face_index: Mapped[int] = mapped_column(Integer)
    faces_found: Mapped[int] = mapped_column(Integer)
    top_k: Mapped[int] = mapped_column(Integer)
    gallery_size: Mapped[int] = mapped_column(Integer)
    quality: Mapped[dict[str, Any]] = mapped_column(JSON)
    quality_failures: Mapped[list[str]] = mapped_column(JSON)
    quality_override_id: Mapped[int | None] = mapped_column(
        ForeignKey("quality_overrides.id"), nullable=True, unique=True
    )
    status: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    case: Mapped[CaseRecord] = relationship(back_populates="searches")
    probe: Mapped[ProbeRecord] = relationship()
    candidates: Mapped[list[CandidateRecord]] = relationship(order_by="CandidateRecord.rank")
    assignments: Mapped[list[SearchAssignment]] = relationship(order_by="SearchAssignment.id")


class CandidateRecord(Base):
    """One ranked gallery subject of a search (its best photo); never a verdict."""

    __tablename__ = "candidates"
    __table_args__ = (UniqueConstraint("search_id", "rank"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id"), index=True)


class SearchAssignment(Base):
    """An examiner assigned to a search, in a review role (examiner or verifier)."""

    __tablename__ = "search_assignments"
    __table_args__ = (UniqueConstraint("search_id", "examiner_username"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id"), index=True)
    examiner_username: Mapped[str] = mapped_column(String(128), index=True)
    examiner_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    review_role: Mapped[str] = mapped_column(String(16))
    assigned_by_username: Mapped[str] = mapped_column(String(128))
    assigned_by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
