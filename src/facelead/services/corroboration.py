"""Corroboration of a released lead, and the outcome that closes a search.

DESIGN.md principle 3: a lead becomes actionable only after corroboration of
an independent kind. Investigators record each item (or each contradicting
fact) after the lead report is released; the first independent supporting
item makes the lead ``corroborated``. A search closes only with an outcome,
and ``confirmed`` only for a corroborated lead. Each is one audited action.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from facelead.domain import corroboration as rules
from facelead.domain.access import Action, Actor
from facelead.domain.cases import SearchStatus, SearchSummary, normalise_case_number
from facelead.domain.review import check_notes
from facelead.errors import NotFoundError
from facelead.services.cases import summary_of, user_ref
from facelead.services.context import Services
from facelead.services.review import move, open_search
from facelead.services.uow import perform
from facelead.store import review as repo


@dataclass(frozen=True)
class CorroborationItem:
    item_id: int
    search_id: int
    kind: rules.CorroborationType
    description: str
    supports: bool  # False: a fact that contradicts the lead
    recorded_by: str
    recorded_at: dt.datetime
    status: SearchStatus  # of the search after recording


def add_corroboration(
    services: Services,
    actor: Actor,
    search_id: int,
    kind: str,
    description: str,
    contradicts: bool = False,
) -> CorroborationItem:
    """Record independent evidence for (or against) a released lead."""
    with perform(services, actor, Action.CORROBORATION_ADD) as scope:
        scope.details.update(kind=kind, description=description, supports=not contradicts)
        search = open_search(scope, search_id)
        rules.refuse_derived_evidence(kind, description)
        kind_ = rules.parse_corroboration_type(kind)
        text = check_notes(description, services.settings.min_justification_chars)
        status = SearchStatus(search.status)
        rules.check_corroboration_state(status)
        row = repo.add_corroboration(
            scope.session, search.id, kind_.value, text, not contradicts, user_ref(actor)
        )
        after = rules.status_after_corroboration(status, not contradicts)
        if after is not status:
            move(scope, search, (after,))
        scope.details.update(corroboration_id=row.id, kind=kind_.value, status=after.value)
        if contradicts:
            scope.details["flag"] = "contradicts_lead"
        return CorroborationItem(
            row.id,
            search.id,
            kind_,
            text,
            row.supports,
            actor.username,
            row.recorded_at,
            after,
        )


def record_outcome(
    services: Services,
    actor: Actor,
    case_number: str,
    search_id: int,
    outcome: str | None,
    notes: str,
) -> SearchSummary:
    """Close one search of a case with its outcome: confirmed, excluded or unresolved."""
    with perform(services, actor, Action.CASE_OUTCOME, case_number=case_number) as scope:
        scope.details.update(outcome=outcome, notes=notes)
        number = normalise_case_number(case_number)
        search = open_search(scope, search_id)
        if search.case.number != number:
            raise NotFoundError(
                f"search {search_id} is not filed under case {number}", code="search_not_in_case"
            )
        result = rules.parse_outcome(outcome)
        status = SearchStatus(search.status)
        supporting = sum(1 for c in repo.corroborations_of(scope.session, search.id) if c.supports)
        rules.check_outcome(status, result, supporting)
        text = check_notes(notes, services.settings.min_justification_chars)
        repo.add_outcome(
            scope.session, search.id, result.value, status.value, text, user_ref(actor)
        )
        move(scope, search, (SearchStatus.CLOSED,))
        scope.details.update(outcome=result.value, supporting_items=supporting)
        return summary_of(search, search.case.number)
