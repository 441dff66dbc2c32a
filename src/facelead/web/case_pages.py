"""Cases: open, find, work (corroboration, outcomes, closing) and the status of a search."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from facelead.domain.corroboration import CorroborationType, Outcome
from facelead.errors import FaceLeadError
from facelead.services.case_file import case_file
from facelead.services.cases import close_case, open_case
from facelead.services.corroboration import add_corroboration, record_outcome
from facelead.services.search import search_status
from facelead.web.context import page, redirect, web_app
from facelead.web.forms import checked, done, integer, refused, text
from facelead.web.routing import WebRoute
from facelead.web.security import ActorDep, FormDep, StateDep

router = APIRouter(route_class=WebRoute)

LEAD_STATES = ("verified", "lead_released", "corroborated", "no_lead", "closed")
CORROBORATION_STATES = ("lead_released", "corroborated")


def case_url(number: str) -> str:
    return f"/case?number={quote(number, safe='')}"


@router.get("/cases")
def cases_home(request: Request, actor: ActorDep, state: StateDep) -> Response:
    """Open a case or go to one; the recent ones of this session are listed."""
    settings = web_app(request).services.settings
    return page(
        request,
        "cases.html",
        offences=settings.offence_categories,
        recent_cases=state.recent_cases,
        draft=state.pop_draft("open_case"),
    )


@router.post("/cases")
def open_case_submit(request: Request, actor: ActorDep, state: StateDep, form: FormDep) -> Response:
    number = text(form, "number")
    try:
        case = open_case(web_app(request).services, actor, number, text(form, "offence"))
    except FaceLeadError as exc:
        return refused(state, exc, "/cases", form, "open_case")
    state.remember_case(case.number)
    return done(state, f"Case {case.number} opened.", case_url(case.number))


@router.get("/case")
def case_page(request: Request, actor: ActorDep, state: StateDep, number: str = "") -> Response:
    """The case page: every search's status, reports, corroboration and outcome."""
    if not number.strip():
        return redirect("/cases")
    file = case_file(web_app(request).services, actor, number)
    state.remember_case(file.case.number)
    return page(
        request,
        "case.html",
        file=file,
        show_disclaimer=True,
        corroboration_types=[t.value for t in CorroborationType],
        outcomes=[o.value for o in Outcome],
        lead_states=LEAD_STATES,
        corroboration_states=CORROBORATION_STATES,
        draft=state.pop_draft("case"),
    )


@router.post("/case/close")
def close_case_submit(
    request: Request, actor: ActorDep, state: StateDep, form: FormDep
) -> Response:
    number = text(form, "number")
    try:
        close_case(web_app(request).services, actor, number)
    except FaceLeadError as exc:
        return refused(state, exc, case_url(number))
    return done(state, f"Case {number} closed.", case_url(number))


@router.post("/case/outcome")
def outcome_submit(request: Request, actor: ActorDep, state: StateDep, form: FormDep) -> Response:
    number = text(form, "number")
    try:
        search_id = integer(form, "search_id") or 0
        record_outcome(
            web_app(request).services,
            actor,
            number,
            search_id,
            text(form, "outcome") or None,
            text(form, "notes"),
        )
    except FaceLeadError as exc:
        return refused(state, exc, case_url(number), form, "case")
    return done(state, f"Search {search_id} closed with its outcome.", case_url(number))


@router.post("/searches/{search_id}/corroboration")
def corroboration_submit(
    request: Request, search_id: int, actor: ActorDep, state: StateDep, form: FormDep
) -> Response:
    """Independent evidence for (or a fact against) a released lead."""
    back = case_url(text(form, "number"))
    try:
        item = add_corroboration(
            web_app(request).services,
            actor,
            search_id,
            text(form, "kind"),
            text(form, "description"),
            contradicts=checked(form, "contradicts"),
        )
    except FaceLeadError as exc:
        return refused(state, exc, back, form, "case")
    what = "Supporting evidence" if item.supports else "Contradicting fact"
    return done(state, f"{what} recorded; search {search_id} is {item.status.value}.", back)


@router.get("/searches/{search_id}")
def search_page(request: Request, search_id: int, actor: ActorDep) -> Response:
    """The status of one search: what the requester may know before any review is done."""
    summary = search_status(web_app(request).services, actor, search_id)
    return page(
        request,
        "search.html",
        summary=summary,
        show_disclaimer=True,
        case_href=case_url(summary.case_number),
        lead_states=LEAD_STATES,
    )
