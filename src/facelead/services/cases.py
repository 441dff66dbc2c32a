"""Cases: open, close and show, and quality overrides granted on a case.

Each is one authorised, audited transaction. A case is what ties a face
search to a law-enforcement purpose, so a search can only be filed under an
open case of the requester's own agency.
"""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from facelead.domain import policy
from facelead.domain.access import Action, Actor
from facelead.domain.cases import (
    Case,
    CaseStatus,
    CaseView,
    SearchStatus,
    SearchSummary,
    normalise_case_number,
)
from facelead.domain.corroboration import require_outcomes
from facelead.domain.identity import normalise_username
from facelead.errors import ConflictError, InputError, NotFoundError
from facelead.services.context import Services
from facelead.services.uow import Scope, perform
from facelead.store import cases as repo
from facelead.store import review as review_repo
from facelead.store.case_models import CaseRecord, SearchRecord

_SHA256_RE = re.compile(r"[0-9a-f]{64}")


def user_ref(actor: Actor) -> repo.UserRef:
    return repo.UserRef(actor.username, actor.user_id)


def open_case(services: Services, actor: Actor, number: str, offence_category: str) -> Case:
    """Open a case for the actor's own agency; the offence category comes from the settings."""
    with perform(
        services, actor, Action.CASE_OPEN, object_type="case", object_id=number, case_number=number
    ) as scope:
        number = _normalised(scope, number)
        scope.details.update(offence_category=offence_category, agency=actor.agency)
        policy.check_offence_category(offence_category, services.settings.offence_categories)
        record = repo.add_case(
            scope.session, number, actor.agency, policy.normalise(offence_category), user_ref(actor)
        )
        return case_of(record)


def close_case(services: Services, actor: Actor, number: str) -> Case:
    """Close a case of the actor's agency once every search has an outcome; no search after."""
    with perform(
        services, actor, Action.CASE_CLOSE, object_type="case", object_id=number, case_number=number
    ) as scope:
        number = _normalised(scope, number)
        record = require_case(scope.session, number)
        policy.require_same_agency(record.agency, actor.agency)
        if record.status == CaseStatus.CLOSED.value:
            raise ConflictError(f"case {number} is already closed", code="case_already_closed")
        closed = (SearchStatus.CLOSED.value,)
        require_outcomes(review_repo.unclosed_searches(scope.session, record.id, closed))
        repo.close_case(scope.session, record, user_ref(actor))
        return case_of(record)


def show_case(services: Services, actor: Actor, number: str) -> CaseView:
    """A case of the actor's agency and the status of its searches; never their candidates."""
    with perform(
        services, actor, Action.CASE_READ, object_type="case", object_id=number, case_number=number
    ) as scope:
        number = _normalised(scope, number)
        record = require_case(scope.session, number)
        policy.require_same_agency(record.agency, actor.agency)
        searches = tuple(
            summary_of(search, record.number)
            for search in repo.searches_of_case(scope.session, record.id)
        )
        return CaseView(case_of(record), searches)


def _normalised(scope: Scope, number: str) -> str:
    """The case number as stored, recorded on the audit event in that form."""
    number = normalise_case_number(number)
    scope.object_id = scope.case_number = number
    return number


def require_case(session: Session, number: str) -> CaseRecord:
    record = repo.find_case(session, number)
    if record is None:
        raise NotFoundError(f"no case {number}", code="case_not_found", case_number=number)
    return record


def case_of(record: CaseRecord) -> Case:
    return Case(
        number=record.number,
        agency=record.agency,
        offence_category=record.offence_category,
        status=CaseStatus(record.status),
        opened_by=record.opened_by_username,
        opened_at=record.opened_at,
        closed_by=record.closed_by_username,
        closed_at=record.closed_at,
    )


def summary_of(search: SearchRecord, case_number: str) -> SearchSummary:
    return SearchSummary(
        search_id=search.id,
        case_number=case_number,
        status=SearchStatus(search.status),
        purpose=search.purpose,
        requester=search.requester_username,
        model_id=search.model_id,
        created_at=search.created_at,
        quality_override=search.quality_override_id is not None,
        examiners=tuple(a.examiner_username for a in search.assignments),
    )


def approve_quality_override(
    services: Services,
    actor: Actor,
    case_number: str,
    probe_sha256: str,
    requester: str,
    justification: str,
) -> int:
    """A supervisor lets one below-floor probe be searched once, by one requester, on one case.

    The investigator's refused submission reports the probe's SHA-256; the
    override is bound to it, to the case and to that requester, is used up by
    the next matching submission, and lapses after the configured days.
    """
    with perform(
        services,
        actor,
        Action.SEARCH_QUALITY_OVERRIDE,
        object_type="quality_override",
        case_number=case_number,
    ) as scope:
        sha = (probe_sha256 or "").strip().lower()
        scope.details.update(probe_sha256=sha, requester=requester, justification=justification)
        requester = scope.details["requester"] = normalise_username(requester)
        if _SHA256_RE.fullmatch(sha) is None:
            raise InputError("the probe id is 64 hex characters", code="invalid_probe_sha256")
        scope.case_number = normalise_case_number(case_number)
        case = require_case(scope.session, scope.case_number)
        # Agency first: another agency learns nothing of the case, not even that it is closed.
        policy.require_same_agency(case.agency, actor.agency)
        policy.require_open_case(case.status, case.number)
        policy.refuse_self_override(actor.username, requester)
        policy.check_justification(justification, services.settings.min_justification_chars)
        override = repo.add_quality_override(
            scope.session, case, sha, requester, user_ref(actor), " ".join(justification.split())
        )
        scope.object_id = str(override.id)
        return override.id
