"""Review repository: reviews, dispositions, resolutions, reports, corroboration, outcomes.

Like the other repositories every function takes the caller's session and
never commits, so a review step, its status change and its audit event are
one transaction. Statuses and decisions are plain strings here; their
meaning lives in ``domain.cases`` and ``domain.review``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from facelead.store.audit_models import AuditEvent
from facelead.store.case_models import SearchAssignment, SearchRecord
from facelead.store.cases import UserRef
from facelead.store.models import utcnow
from facelead.store.review_models import (
    CorroborationRecord,
    DispositionRecord,
    LeadReportRecord,
    OutcomeRecord,
    ResolutionRecord,
    ReviewRecord,
)


@dataclass(frozen=True, slots=True)
class Disposed:
    candidate_id: int
    disposition: str
    notes: str


def lock_search(session: Session, search_id: int) -> SearchRecord | None:
    """The search row, locked until commit: review steps on it run one at a time.

    Two examiners disposing at once would otherwise both see ``candidates_ready``.
    On SQLite, which ignores FOR UPDATE, this locking read takes the database
    write lock instead (``store.db``), so the same holds there.
    """
    stmt = select(SearchRecord).where(SearchRecord.id == search_id).with_for_update()
    return session.scalar(stmt.execution_options(populate_existing=True))


def current_round(session: Session, search_id: int) -> int:
    """The review round in progress: 1 until a supervisor sends a search back for re-review."""
    stmt = select(func.max(ReviewRecord.round)).where(ReviewRecord.search_id == search_id)
    return int(session.scalar(stmt) or 1)


def add_review(
    session: Session, assignment: SearchAssignment, round_no: int, blind: bool
) -> ReviewRecord:
    review = ReviewRecord(
        search_id=assignment.search_id,
        assignment_id=assignment.id,
        round=round_no,
        review_role=assignment.review_role,
        examiner_username=assignment.examiner_username,
        examiner_user_id=assignment.examiner_user_id,
        blind=blind,
        created_at=utcnow(),
    )
    session.add(review)
    session.flush()
    return review


def reviews_of(session: Session, search_id: int, round_no: int | None = None) -> list[ReviewRecord]:
    stmt = select(ReviewRecord).where(ReviewRecord.search_id == search_id)
    if round_no is not None:
        stmt = stmt.where(ReviewRecord.round == round_no)
    return list(session.scalars(stmt.order_by(ReviewRecord.round, ReviewRecord.id)))


def review_for(
    session: Session, search_id: int, username: str, round_no: int
) -> ReviewRecord | None:
    stmt = select(ReviewRecord).where(
        ReviewRecord.search_id == search_id,
        ReviewRecord.examiner_username == username,
        ReviewRecord.round == round_no,
    )
    return session.scalar(stmt)


def assignments_of(session: Session, search_id: int) -> list[SearchAssignment]:
    stmt = (
        select(SearchAssignment)
        .where(SearchAssignment.search_id == search_id)
        .order_by(SearchAssignment.id)
    )
    return list(session.scalars(stmt))


def open_blind_review(session: Session, search_id: int, username: str) -> bool:
    """Whether this person has a blind review of the current round still undecided."""
    review = review_for(session, search_id, username, current_round(session, search_id))
    return review is not None and review.blind and review.completed_at is None


def set_features(
    session: Session, review: ReviewRecord, features: dict[str, str], note: str
) -> None:
    review.features = features
    review.features_note = note
    review.features_at = utcnow()
    session.flush()


def complete_review(
    session: Session, review: ReviewRecord, conclusion: str, dispositions: Iterable[Disposed]
) -> None:
    now = utcnow()
    session.add_all(
        DispositionRecord(
            review_id=review.id,
            candidate_id=d.candidate_id,
            disposition=d.disposition,
            notes=d.notes,
            recorded_at=now,
        )
        for d in dispositions
    )
    review.conclusion = conclusion
    review.completed_at = now
    session.flush()


_Row = TypeVar("_Row", ResolutionRecord, LeadReportRecord, CorroborationRecord, OutcomeRecord)


def _added(session: Session, row: _Row) -> _Row:
    """Add *row* and flush, so its id exists before the audit event that names it."""
    session.add(row)
    session.flush()
    return row


def _rows_of(session: Session, record: type[_Row], search_id: int) -> list[_Row]:
    """Every *record* of one search, oldest first."""
    stmt = select(record).where(record.search_id == search_id).order_by(record.id)
    return list(session.scalars(stmt))


def _recorded_by(who: UserRef) -> dict[str, Any]:
    return {
        "recorded_by_username": who.username,
        "recorded_by_user_id": who.user_id,
        "recorded_at": utcnow(),
    }


def add_resolution(
    session: Session, search_id: int, round_no: int, who: UserRef, decision: str, notes: str
) -> ResolutionRecord:
    row = ResolutionRecord(
        search_id=search_id,
        round=round_no,
        supervisor_username=who.username,
        supervisor_user_id=who.user_id,
        decision=decision,
        notes=notes,
        created_at=utcnow(),
    )
    return _added(session, row)


def resolutions_of(session: Session, search_id: int) -> list[ResolutionRecord]:
    return _rows_of(session, ResolutionRecord, search_id)


def add_lead_report(session: Session, **fields: Any) -> LeadReportRecord:
    return _added(session, LeadReportRecord(created_at=utcnow(), **fields))


def lead_reports_of(session: Session, search_id: int) -> list[LeadReportRecord]:
    return _rows_of(session, LeadReportRecord, search_id)


def add_corroboration(
    session: Session, search_id: int, kind: str, description: str, supports: bool, who: UserRef
) -> CorroborationRecord:
    row = CorroborationRecord(
        search_id=search_id,
        kind=kind,
        description=description,
        supports=supports,
        **_recorded_by(who),
    )
    return _added(session, row)


def corroborations_of(session: Session, search_id: int) -> list[CorroborationRecord]:
    return _rows_of(session, CorroborationRecord, search_id)


def add_outcome(
    session: Session, search_id: int, outcome: str, status_before: str, notes: str, who: UserRef
) -> OutcomeRecord:
    row = OutcomeRecord(
        search_id=search_id,
        outcome=outcome,
        status_before=status_before,
        notes=notes,
        **_recorded_by(who),
    )
    return _added(session, row)


def outcome_of(session: Session, search_id: int) -> OutcomeRecord | None:
    return session.scalar(select(OutcomeRecord).where(OutcomeRecord.search_id == search_id))


def unclosed_searches(session: Session, case_id: int, closed: Collection[str]) -> list[int]:
    """Ids of a case's searches whose status is not one of ``closed``."""
    stmt = select(SearchRecord.id).where(
        SearchRecord.case_id == case_id, SearchRecord.status.not_in(list(closed))
    )
    return list(session.scalars(stmt.order_by(SearchRecord.id)))


def queue(session: Session, agency: str, statuses: Collection[str]) -> list[SearchRecord]:
    """Searches of one agency waiting in the given states, oldest first."""
    stmt = (
        select(SearchRecord)
        .where(SearchRecord.requester_agency == agency, SearchRecord.status.in_(list(statuses)))
        .order_by(SearchRecord.created_at, SearchRecord.id)
    )
    return list(session.scalars(stmt))


def case_audit_events(
    session: Session, case_number: str, search_ids: Sequence[int]
) -> list[AuditEvent]:
    """Every audit event of a case: filed under its number, or about one of its searches.

    Read straight from the append-only table (disclosure needs the rows as
    stored, hashes included); the chain itself is verified by ``facelead audit verify``.
    """
    about = [AuditEvent.case_number == case_number]
    if search_ids:
        about.append(
            (AuditEvent.object_type == "search")
            & AuditEvent.object_id.in_([str(i) for i in search_ids])
        )
    stmt = select(AuditEvent).where(or_(*about)).order_by(AuditEvent.seq)
    return list(session.scalars(stmt))
