"""Lead reports (after peer verification, to the requester) and corroboration of a lead."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from facelead.api.deps import CurrentActor, ServicesDep
from facelead.api.errors import error_responses
from facelead.api.fields import Line, Notes, SearchId
from facelead.api.models import CorroborationOut, LeadReportOut, ReportLeadOut, ReviewerLineOut
from facelead.services.corroboration import add_corroboration
from facelead.services.reports import LeadReportFiles, lead_report

router = APIRouter(prefix="/searches", tags=["leads"], responses=error_responses(409))

REPORT_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
DOCUMENTS: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/html": {}, "application/pdf": {}},
        "description": "The report content as JSON, or the HTML or PDF document itself.",
    }
}


class ReportFormat(StrEnum):
    JSON = "json"
    HTML = "html"
    PDF = "pdf"


class CorroborationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Line = Field(
        description="vehicle-information, open-source-media, witness-statement, alibi-check, "
        "physical-or-forensic-evidence or other (never a lineup built from the lead)."
    )
    description: Notes = Field(description="What was found, where and by whom.")
    contradicts: bool = Field(default=False, description="The fact contradicts the lead.")


def _report_out(files: LeadReportFiles) -> LeadReportOut:
    report = files.report
    return LeadReportOut(
        kind=report.kind,
        search_id=report.search_id,
        case_number=report.case_number,
        requester=report.requester,
        model_id=report.model_id,
        leads=[ReportLeadOut.model_validate(lead) for lead in report.leads],
        reviewers=[ReviewerLineOut.model_validate(line) for line in report.reviewers],
        issued_by=report.issued_by,
        issued_at=report.issued_at,
        html_sha256=files.html_sha256,
        pdf_sha256=files.pdf_sha256,
        disclaimer=report.disclaimer,
    )


@router.post("/{search_id}/lead-report", response_model=LeadReportOut, responses=DOCUMENTS)
def lead_report_route(
    search_id: SearchId,
    actor: CurrentActor,
    services: ServicesDep,
    fmt: Annotated[ReportFormat, Query(alias="format")] = ReportFormat.JSON,
) -> Any:
    """Issue the lead (or no-lead) report of a verified search; each issue is recorded.

    The first issue of a verified lead releases it to the requester.
    """
    files = lead_report(services, actor, search_id)
    name = f"lead-report-{search_id}"
    if fmt is ReportFormat.HTML:
        headers = {"Content-Security-Policy": REPORT_CSP, "X-Report-SHA256": files.html_sha256}
        return Response(files.html, media_type="text/html; charset=utf-8", headers=headers)
    if fmt is ReportFormat.PDF:
        headers = {
            "Content-Disposition": f'attachment; filename="{name}.pdf"',
            "X-Report-SHA256": files.pdf_sha256,
        }
        return Response(files.pdf, media_type="application/pdf", headers=headers)
    return _report_out(files)


@router.post("/{search_id}/corroboration", status_code=201)
def corroboration_route(
    search_id: SearchId, body: CorroborationIn, actor: CurrentActor, services: ServicesDep
) -> CorroborationOut:
    """Investigator: independent evidence for (or against) a released lead."""
    item = add_corroboration(
        services, actor, search_id, body.type, body.description, body.contradicts
    )
    return CorroborationOut.model_validate(item)
