"""Cases and searches repository: the SQL the case and search services need.

Like the gallery repository, every function takes the caller's session and
never commits, so a search (probe, search row, candidates, audit event) is one
transaction. Statuses are plain strings here; their meaning and transitions
live in ``domain.cases``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from facelead.errors import ConflictError
from facelead.store.case_models import (
    CandidateRecord,
    CaseRecord,
    ProbeRecord,
    QualityOverride,
    SearchAssignment,
    SearchRecord,
)
from facelead.store.models import utcnow


@dataclass(frozen=True, slots=True)
class UserRef:
    """Who did something: a username always, a user id once accounts exist."""

    username: str
    user_id: int | None = None


@dataclass(frozen=True, slots=True)
class RankedHit:
    rank: int
    score: float
    subject_id: int
    photo_id: int


def find_case(session: Session, number: str) -> CaseRecord | None:
    return session.scalar(select(CaseRecord).where(CaseRecord.number == number))


def add_case(
    session: Session, number: str, agency: str, offence_category: str, opened_by: UserRef
) -> CaseRecord:
    """A case number is unique across agencies: the audit log matches on it alone."""
    if find_case(session, number) is not None:
        raise ConflictError(f"case {number} already exists", code="case_exists", number=number)
    case = CaseRecord(
        number=number,
        agency=agency,
        offence_category=offence_category,
        status="open",
        opened_by_username=opened_by.username,
        opened_by_user_id=opened_by.user_id,
        opened_at=utcnow(),
    )
    session.add(case)
    session.flush()
    return case


def close_case(session: Session, case: CaseRecord, closed_by: UserRef) -> None:
    case.status = "closed"
    case.closed_by_username = closed_by.username
    case.closed_by_user_id = closed_by.user_id
    case.closed_at = utcnow()
    session.flush()


def count_searches_since(session: Session, requester: UserRef, since: datetime) -> int:
    """Stored searches by one requester (matched by id when known, else username)."""
    who = (
        SearchRecord.requester_user_id == requester.user_id
        if requester.user_id is not None
        else SearchRecord.requester_username == requester.username
    )
    stmt = (
        select(func.count()).select_from(SearchRecord).where(who, SearchRecord.created_at >= since)
    )
    return int(session.scalar(stmt) or 0)


def add_probe(session: Session, **fields: Any) -> ProbeRecord:
    probe = ProbeRecord(created_at=utcnow(), **fields)
    session.add(probe)
    session.flush()
    return probe


def probe_sha_in_use(session: Session, sha: str) -> bool:
    """Whether any stored probe row still points at these bytes."""
    return bool(session.scalar(select(exists().where(ProbeRecord.image_sha256 == sha))))


def add_search(session: Session, **fields: Any) -> SearchRecord:
    now = utcnow()
    search = SearchRecord(created_at=now, status_changed_at=now, **fields)
    session.add(search)
    session.flush()
    return search


def set_search_status(session: Session, search: SearchRecord, status: str) -> None:
    search.status = status
    search.status_changed_at = utcnow()
    session.flush()


def add_candidates(session: Session, search_id: int, hits: Iterable[RankedHit]) -> int:
    rows = [
        CandidateRecord(
            search_id=search_id,
            rank=hit.rank,
            score=hit.score,
            subject_id=hit.subject_id,
            photo_id=hit.photo_id,
        )
        for hit in hits
    ]
    session.add_all(rows)
    session.flush()
    return len(rows)


def get_search(session: Session, search_id: int) -> SearchRecord | None:
    return session.get(SearchRecord, search_id)


def searches_of_case(session: Session, case_id: int) -> list[SearchRecord]:
    stmt = select(SearchRecord).where(SearchRecord.case_id == case_id).order_by(SearchRecord.id)
    return list(session.scalars(stmt))


def assigned_usernames(session: Session, search_id: int) -> list[str]:
    stmt = (
        select(SearchAssignment.examiner_username)
        .where(SearchAssignment.search_id == search_id)
        .order_by(SearchAssignment.id)
    )
    return list(session.scalars(stmt))


def add_assignment(
    session: Session, search_id: int, examiner: UserRef, review_role: str, assigned_by: UserRef
) -> SearchAssignment:
    """One person holds at most one review role on a search (two-person rule)."""
    if examiner.username in assigned_usernames(session, search_id):
        raise ConflictError(
            f"{examiner.username} is already assigned to search {search_id}",
            code="already_assigned",
        )
    assignment = SearchAssignment(
        search_id=search_id,
        examiner_username=examiner.username,
        examiner_user_id=examiner.user_id,
        review_role=review_role,
        assigned_by_username=assigned_by.username,
        assigned_by_user_id=assigned_by.user_id,
        assigned_at=utcnow(),
    )
    session.add(assignment)
    session.flush()
    return assignment


def add_quality_override(
    session: Session,
    case: CaseRecord,
    probe_sha256: str,
    requester_username: str,
    supervisor: UserRef,
    justification: str,
) -> QualityOverride:
    override = QualityOverride(
        case_id=case.id,
        probe_sha256=probe_sha256,
        requester_username=requester_username,
        supervisor_username=supervisor.username,
        supervisor_user_id=supervisor.user_id,
        justification=justification,
        created_at=utcnow(),
    )
    session.add(override)
    session.flush()
    return override


def find_unused_override(
    session: Session, case_id: int, probe_sha256: str, requester_username: str, since: datetime
) -> QualityOverride | None:
    """The oldest approval for exactly this probe, case and requester not yet used by a search."""
    used = select(SearchRecord.id).where(SearchRecord.quality_override_id == QualityOverride.id)
    stmt = (
        select(QualityOverride)
        .where(
            QualityOverride.case_id == case_id,
            QualityOverride.probe_sha256 == probe_sha256,
            QualityOverride.requester_username == requester_username,
            QualityOverride.created_at >= since,
            ~used.exists(),
        )
        .order_by(QualityOverride.id)
        .limit(1)
    )
    return session.scalar(stmt)
