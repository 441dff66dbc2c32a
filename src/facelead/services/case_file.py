"""A case as its investigator works it: searches, their corroboration, reports and outcomes.

``show_case`` gives statuses only; the case page also lists what was
recorded to corroborate (or contradict) each released lead, how many lead
reports were issued and each search's outcome, so the investigator sees what
still stands between a lead and an actionable one. One audited ``case.read``.
"""

from __future__ import annotations

from dataclasses import dataclass

from facelead.domain import policy
from facelead.domain.access import Action, Actor
from facelead.domain.cases import Case, SearchSummary, normalise_case_number
from facelead.domain.corroboration import CorroborationType
from facelead.services.cases import case_of, require_case, summary_of
from facelead.services.context import Services
from facelead.services.corroboration import CorroborationItem
from facelead.services.uow import perform
from facelead.store import cases as cases_repo
from facelead.store import review as repo


@dataclass(frozen=True)
class SearchFile:
    summary: SearchSummary
    corroboration: tuple[CorroborationItem, ...]
    reports_issued: int
    outcome: str | None
    outcome_notes: str | None


@dataclass(frozen=True)
class CaseFile:
    case: Case
    searches: tuple[SearchFile, ...]


def case_file(services: Services, actor: Actor, number: str) -> CaseFile:
    """The case of the actor's agency with every search's corroboration and outcome."""
    with perform(services, actor, Action.CASE_READ, object_type="case") as scope:
        number = normalise_case_number(number)
        scope.object_id = scope.case_number = number
        scope.details["view"] = "case_file"
        record = require_case(scope.session, number)
        policy.require_same_agency(record.agency, actor.agency)
        files = []
        for search in cases_repo.searches_of_case(scope.session, record.id):
            summary = summary_of(search, record.number)
            items = tuple(
                CorroborationItem(
                    row.id,
                    search.id,
                    CorroborationType(row.kind),
                    row.description,
                    row.supports,
                    row.recorded_by_username,
                    row.recorded_at,
                    summary.status,
                )
                for row in repo.corroborations_of(scope.session, search.id)
            )
            outcome = repo.outcome_of(scope.session, search.id)
            files.append(
                SearchFile(
                    summary,
                    items,
                    len(repo.lead_reports_of(scope.session, search.id)),
                    outcome.outcome if outcome else None,
                    outcome.notes if outcome else None,
                )
            )
        scope.details["searches"] = len(files)
        return CaseFile(case_of(record), tuple(files))
