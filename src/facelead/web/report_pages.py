"""Lead reports: issued on request (each issue is recorded), shown, and downloadable.

Issuing is a POST because it is an action: the first issue of a verified
lead releases it to the requester, and every issue is audited with the
SHA-256 of its HTML and PDF. The files issued stay in the user's session so
the same documents (same hashes) can be downloaded without issuing again.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from facelead.errors import FaceLeadError, NotFoundError
from facelead.services.report_render import booking_line, facts, reviewer_rows
from facelead.services.reports import lead_report
from facelead.web.context import page, web_app
from facelead.web.forms import refused
from facelead.web.media import data_uri
from facelead.web.routing import WebRoute, secure
from facelead.web.security import ActorDep, FormDep, StateDep
from facelead.web.sessions import IssuedReport

router = APIRouter(route_class=WebRoute)


@router.get("/searches/{search_id}/report")
def report_start(request: Request, search_id: int, actor: ActorDep) -> Response:
    return page(request, "report_issue.html", search_id=search_id, show_disclaimer=True)


@router.post("/searches/{search_id}/report")
def report_issue(
    request: Request, search_id: int, actor: ActorDep, state: StateDep, form: FormDep
) -> Response:
    try:
        files = lead_report(web_app(request).services, actor, search_id)
    except FaceLeadError as exc:
        return refused(state, exc, f"/searches/{search_id}/report")
    report = files.report
    stem = f"lead-report-{report.case_number}-{search_id}".replace("/", "_")
    state.issued_report = IssuedReport(search_id, files.html, files.pdf, stem)
    leads = [
        {
            "lead": lead,
            "photo": data_uri(lead.photo),
            "booking": booking_line(lead, report.stale_after_years),
        }
        for lead in report.leads
    ]
    return page(
        request,
        "report.html",
        report=report,
        facts=facts(report),
        reviewers=reviewer_rows(report),
        probe=data_uri(report.probe),
        leads=leads,
        html_sha256=files.html_sha256,
        pdf_sha256=files.pdf_sha256,
        show_disclaimer=True,
    )


@router.get("/searches/{search_id}/report.{fmt}")
def report_download(
    request: Request, search_id: int, fmt: str, actor: ActorDep, state: StateDep
) -> Response:
    """The files issued last in this session; issuing again is a separate, recorded act."""
    issued = state.issued_report
    if issued is None or issued.search_id != search_id or fmt not in ("html", "pdf"):
        raise NotFoundError(
            "issue the report first; its files are kept for this session only",
            code="report_not_issued",
        )
    body: bytes = issued.pdf if fmt == "pdf" else issued.html.encode("utf-8")
    media = "application/pdf" if fmt == "pdf" else "text/html; charset=utf-8"
    response = Response(body, media_type=media)
    response.headers["Content-Disposition"] = f'attachment; filename="{issued.filename}.{fmt}"'
    return secure(response)
