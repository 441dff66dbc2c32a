"""Read-only queries behind the public transparency report.

Each returns only the columns the report counts: no usernames, user ids,
case numbers, subject ids or free text ever leave these functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from facelead.store.case_models import CaseRecord, SearchRecord
from facelead.store.lifecycle_models import RetentionAction, Tombstone
from facelead.store.review_models import OutcomeRecord, ReviewRecord

EXAMINER = "examiner"  # domain.cases.ReviewRole.EXAMINER: the first review of a search


class SearchRow(NamedTuple):
    created_at: datetime
    purpose: str
    status: str
    offence_category: str
    outcome: str | None  # confirmed, excluded, unresolved (closed searches only)
    status_before: str | None  # the status the search closed from
    first_review_at: datetime | None  # the first examiner's conclusion


def searches_between(session: Session, start: datetime, end: datetime) -> Iterator[SearchRow]:
    """Searches made in [start, end), with their outcome and first examiner review."""
    first = (
        select(
            ReviewRecord.search_id.label("search_id"),
            func.min(ReviewRecord.completed_at).label("at"),
        )
        .where(ReviewRecord.review_role == EXAMINER, ReviewRecord.completed_at.is_not(None))
        .group_by(ReviewRecord.search_id)
        .subquery()
    )
    query = (
        select(
            SearchRecord.created_at,
            SearchRecord.purpose,
            SearchRecord.status,
            CaseRecord.offence_category,
            OutcomeRecord.outcome,
            OutcomeRecord.status_before,
            first.c.at,
        )
        .join(CaseRecord, CaseRecord.id == SearchRecord.case_id)
        .outerjoin(OutcomeRecord, OutcomeRecord.search_id == SearchRecord.id)
        .outerjoin(first, first.c.search_id == SearchRecord.id)
        .where(SearchRecord.created_at >= start, SearchRecord.created_at < end)
        .order_by(SearchRecord.id)
    )
    for row in session.execute(query):
        yield SearchRow(*row)


def removal_kinds_between(session: Session, start: datetime, end: datetime) -> list[str]:
    """The kind (sealed, expunged, purged) of each removal order applied in [start, end)."""
    query = select(Tombstone.kind).where(Tombstone.removed_at >= start, Tombstone.removed_at < end)
    return list(session.scalars(query))


def retention_rules_between(session: Session, start: datetime, end: datetime) -> list[str]:
    """The rule of each search whose probe and candidates retention deleted in [start, end)."""
    query = select(RetentionAction.rule).where(
        RetentionAction.applied_at >= start, RetentionAction.applied_at < end
    )
    return list(session.scalars(query))
