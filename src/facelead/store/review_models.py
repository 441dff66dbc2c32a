"""ORM tables of review, verification, lead reports, corroboration and outcomes (0005_review).

Each is keyed by ``searches.id`` (and ``search_assignments.id`` for reviews)
rather than widening the search tables. Rows are only ever added, except a
review's completion fields, which are written once: a disposition recorded
is never edited, so what the examiner decided blind stays what they decided.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from facelead.store.case_models import CandidateRecord, SearchAssignment
from facelead.store.models import Base, UTCDateTime, utcnow


class ReviewRecord(Base):
    """One reviewer's work on one round of a search: features first, then dispositions."""

    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("assignment_id", "round"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id"), index=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("search_assignments.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    review_role: Mapped[str] = mapped_column(String(16))
    examiner_username: Mapped[str] = mapped_column(String(128), index=True)
    examiner_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    blind: Mapped[bool] = mapped_column(Boolean)
    features: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    features_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    features_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    conclusion: Mapped[str | None] = mapped_column(String(32), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    assignment: Mapped[SearchAssignment] = relationship()
    dispositions: Mapped[list[DispositionRecord]] = relationship(
        back_populates="review", order_by="DispositionRecord.id"
    )


class DispositionRecord(Base):
    """One reviewer's disposition of one candidate (exclude, inconclusive, possible lead)."""

    __tablename__ = "review_dispositions"
    __table_args__ = (UniqueConstraint("review_id", "candidate_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id"), index=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    disposition: Mapped[str] = mapped_column(String(16))
    notes: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    review: Mapped[ReviewRecord] = relationship(back_populates="dispositions")
    candidate: Mapped[CandidateRecord] = relationship()


class ResolutionRecord(Base):
    """A supervisor's resolution of a disagreement between examiner and verifier."""

    __tablename__ = "review_resolutions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    supervisor_username: Mapped[str] = mapped_column(String(128))
    supervisor_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decision: Mapped[str] = mapped_column(String(16))
    notes: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LeadReportRecord(Base):
    """One issue of a lead (or no-lead) report; the files are identified by their SHA-256."""

    __tablename__ = "lead_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    issued_to_username: Mapped[str] = mapped_column(String(128))
    issued_by_username: Mapped[str] = mapped_column(String(128))
    issued_by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    html_sha256: Mapped[str] = mapped_column(String(64))
    pdf_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CorroborationRecord(Base):
    """Independent evidence about a released lead; ``supports`` is False for contradicting facts."""

    __tablename__ = "corroborations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id"), index=True)
    kind: Mapped[str] = mapped_column(String(48))
    description: Mapped[str] = mapped_column(Text)
    supports: Mapped[bool] = mapped_column(Boolean)
    recorded_by_username: Mapped[str] = mapped_column(String(128))
    recorded_by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OutcomeRecord(Base):
    """How a search ended (confirmed, excluded, unresolved); written once, when it closes."""

    __tablename__ = "search_outcomes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id"), unique=True)
    outcome: Mapped[str] = mapped_column(String(16))
    status_before: Mapped[str] = mapped_column(String(32))
    notes: Mapped[str] = mapped_column(Text)
    recorded_by_username: Mapped[str] = mapped_column(String(128))
    recorded_by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
