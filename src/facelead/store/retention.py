"""Retention repository: the facts the rules read, and the deletions they order.

Reads the cases, searches, candidates, review dispositions and outcomes
tables (their schema belongs to the cases and review migrations) and writes
only ``retention_actions`` plus the deletions of candidate and disposition
rows. Never commits; never touches the audit tables.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from facelead.store.case_models import CandidateRecord, CaseRecord, ProbeRecord, SearchRecord
from facelead.store.lifecycle_models import RetentionAction
from facelead.store.models import utcnow
from facelead.store.review_models import DispositionRecord, OutcomeRecord

SearchRow = tuple[int, str, datetime, datetime | None, str | None, str, str]


def unapplied_searches(session: Session) -> Iterator[SearchRow]:
    """Every search without a retention action.

    Rows: (search id, status, searched at, case closed at, status before close,
    case number, probe SHA-256).
    """
    stmt = (
        select(
            SearchRecord.id,
            SearchRecord.status,
            SearchRecord.created_at,
            CaseRecord.closed_at,
            OutcomeRecord.status_before,
            CaseRecord.number,
            ProbeRecord.image_sha256,
        )
        .join(CaseRecord, CaseRecord.id == SearchRecord.case_id)
        .join(ProbeRecord, ProbeRecord.id == SearchRecord.probe_id)
        .outerjoin(OutcomeRecord, OutcomeRecord.search_id == SearchRecord.id)
        .outerjoin(RetentionAction, RetentionAction.search_id == SearchRecord.id)
        .where(RetentionAction.id.is_(None))
        .order_by(SearchRecord.id)
        .execution_options(yield_per=2000)
    )
    for sid, status, created, closed, before, number, sha in session.execute(stmt):
        yield int(sid), str(status), created, closed, before, str(number), str(sha)


def candidate_counts(session: Session, search_ids: Collection[int]) -> dict[int, tuple[int, int]]:
    """(candidates, dispositions) per search."""
    ids = sorted(search_ids)
    out = {sid: (0, 0) for sid in ids}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        cands = session.execute(
            select(CandidateRecord.search_id, func.count())
            .where(CandidateRecord.search_id.in_(chunk))
            .group_by(CandidateRecord.search_id)
        )
        for sid, n in cands:
            out[int(sid)] = (int(n), 0)
        disps = session.execute(
            select(CandidateRecord.search_id, func.count())
            .join(DispositionRecord, DispositionRecord.candidate_id == CandidateRecord.id)
            .where(CandidateRecord.search_id.in_(chunk))
            .group_by(CandidateRecord.search_id)
        )
        for sid, n in disps:
            out[int(sid)] = (out[int(sid)][0], int(n))
    return out


def searches_needing_probe(session: Session, shas: Collection[str]) -> dict[str, set[int]]:
    """For each probe SHA-256, the searches using it that have not released it."""
    out: dict[str, set[int]] = {sha: set() for sha in shas}
    keys = sorted(shas)
    for start in range(0, len(keys), 500):
        rows = session.execute(
            select(ProbeRecord.image_sha256, SearchRecord.id)
            .join(SearchRecord, SearchRecord.probe_id == ProbeRecord.id)
            .outerjoin(RetentionAction, RetentionAction.search_id == SearchRecord.id)
            .where(
                ProbeRecord.image_sha256.in_(keys[start : start + 500]),
                RetentionAction.id.is_(None),
            )
        )
        for sha, sid in rows:
            out[str(sha)].add(int(sid))
    return out


def _still_needed() -> Select[str]:
    """Probe SHA-256s used by at least one search that has not released them."""
    return (
        select(ProbeRecord.image_sha256)
        .join(SearchRecord, SearchRecord.probe_id == ProbeRecord.id)
        .outerjoin(RetentionAction, RetentionAction.search_id == SearchRecord.id)
        .where(RetentionAction.id.is_(None))
    )


def needed_probe_shas(session: Session) -> set[str]:
    """Probe images some search still needs: their files must exist."""
    return {str(sha) for sha in session.scalars(_still_needed().distinct())}


def released_probe_shas(session: Session) -> set[str]:
    """Probe images that every search using them has released."""
    stmt = select(RetentionAction.probe_sha256).where(
        RetentionAction.probe_sha256.not_in(_still_needed())
    )
    return {str(sha) for sha in session.scalars(stmt.distinct())}


def delete_candidate_list(session: Session, search_id: int) -> tuple[int, int]:
    """Dispositions first (they point at candidates), then the candidates."""
    cand_ids = select(CandidateRecord.id).where(CandidateRecord.search_id == search_id)
    disps = session.execute(
        delete(DispositionRecord)
        .where(DispositionRecord.candidate_id.in_(cand_ids))
        .execution_options(synchronize_session=False)
    )
    cands = session.execute(
        delete(CandidateRecord)
        .where(CandidateRecord.search_id == search_id)
        .execution_options(synchronize_session=False)
    )
    return int(cands.rowcount), int(disps.rowcount)  # type: ignore[attr-defined]


def has_action(session: Session, search_id: int) -> bool:
    stmt = select(RetentionAction.id).where(RetentionAction.search_id == search_id)
    return session.scalar(stmt) is not None


def add_action(
    session: Session,
    *,
    search_id: int,
    rule: str,
    probe_sha256: str,
    probe_file_deleted: bool,
    candidates_deleted: int,
    dispositions_deleted: int,
    applied_by: str,
    when: datetime | None = None,
) -> RetentionAction:
    row = RetentionAction(
        search_id=search_id,
        rule=rule,
        probe_sha256=probe_sha256,
        probe_file_deleted=probe_file_deleted,
        candidates_deleted=candidates_deleted,
        dispositions_deleted=dispositions_deleted,
        details={},
        applied_by_username=applied_by,
        applied_at=when or utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def actions(session: Session) -> list[RetentionAction]:
    return list(session.scalars(select(RetentionAction).order_by(RetentionAction.search_id)))
