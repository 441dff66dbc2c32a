"""Cases: open, show, close; quality overrides, search outcomes and disclosure packages.

Case numbers are agency formats and may contain '/', so the number is a
``path`` parameter: ``/cases/LA/2025/7/close`` closes case ``LA/2025/7``.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from facelead.api.deps import CurrentActor, ServicesDep
from facelead.api.errors import error_responses
from facelead.api.fields import MAX_ID, CaseNumber, Line, Name, Notes
from facelead.api.models import CaseOut, CaseViewOut, OverrideOut, SearchSummaryOut
from facelead.services.cases import approve_quality_override, close_case, open_case, show_case
from facelead.services.corroboration import record_outcome
from facelead.services.disclosure import disclose_case

router = APIRouter(prefix="/cases", tags=["cases"])


class CaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: Name = Field(description="The case number as the agency writes it.")
    offence_category: Name = Field(description="From the configured list, e.g. robbery.")


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    probe_sha256: Line = Field(description="SHA-256 of the refused probe (from the refusal).")
    requester: Name = Field(description="The investigator whose resubmission may proceed.")
    justification: Notes


class OutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    search_id: int = Field(ge=1, le=MAX_ID)
    outcome: Line | None = Field(
        default=None, description="confirmed (needs corroboration), excluded or unresolved."
    )
    notes: Notes = ""


@router.post("", status_code=201, responses=error_responses(409))
def open_route(body: CaseIn, actor: CurrentActor, services: ServicesDep) -> CaseOut:
    """Open a case for the caller's agency (investigators, supervisors)."""
    return CaseOut.model_validate(open_case(services, actor, body.number, body.offence_category))


@router.get("/{number:path}")
def show_route(number: CaseNumber, actor: CurrentActor, services: ServicesDep) -> CaseViewOut:
    """A case and the status of its searches; never their candidates."""
    return CaseViewOut.model_validate(show_case(services, actor, number))


@router.post("/{number:path}/close", responses=error_responses(409))
def close_route(number: CaseNumber, actor: CurrentActor, services: ServicesDep) -> CaseOut:
    """Close a case once every search has an outcome; no search can be filed after."""
    return CaseOut.model_validate(close_case(services, actor, number))


@router.post("/{number:path}/quality-overrides", status_code=201, responses=error_responses(409))
def override_route(
    number: CaseNumber, body: OverrideIn, actor: CurrentActor, services: ServicesDep
) -> OverrideOut:
    """Supervisor: let one below-quality probe be searched once, by one requester, on this case."""
    override_id = approve_quality_override(
        services, actor, number, body.probe_sha256, body.requester, body.justification
    )
    return OverrideOut(override_id=override_id, case_number=number, requester=body.requester)


@router.post("/{number:path}/outcomes", responses=error_responses(409))
def outcome_route(
    number: CaseNumber, body: OutcomeIn, actor: CurrentActor, services: ServicesDep
) -> SearchSummaryOut:
    """Close one search of the case with its outcome; a search never closes without one."""
    summary = record_outcome(services, actor, number, body.search_id, body.outcome, body.notes)
    return SearchSummaryOut.model_validate(summary)


@router.post(
    "/{number:path}/disclosure",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "The ZIP package."}},
)
def disclosure_route(number: CaseNumber, actor: CurrentActor, services: ServicesDep) -> Response:
    """Supervisor: the case's disclosure package (ZIP with SHA-256 manifest), audited."""
    package = disclose_case(services, actor, number)
    return Response(
        package.data,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{package.filename}"',
            "X-Package-SHA256": package.sha256,
        },
    )
