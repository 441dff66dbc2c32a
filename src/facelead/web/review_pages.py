"""Examiner work: the queue, the side-by-side comparison, the checklist, dispositions, verification.

What a reviewer sees comes from ``show_review`` (blind: shuffled, unscored
until their dispositions are recorded; a verifier sees only the possible
leads and never the first examiner's conclusion). Images come one by one
through ``review_image``, which authorises and audits each view.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.datastructures import FormData

from facelead.domain.cases import ReviewRole
from facelead.domain.review import FEATURES, Decision, FeatureStatus, parse_disposition
from facelead.errors import FaceLeadError, InputError
from facelead.services.images import candidate_photo, probe_image
from facelead.services.review import assign_reviewer, dispose, record_features, review_queue, verify
from facelead.services.review_marks import FaceMarks, ReviewMarks, review_marks
from facelead.services.review_view import ReviewPacket, show_review
from facelead.web.context import page, web_app
from facelead.web.forms import checked, done, refused, text
from facelead.web.routing import WebRoute, secure
from facelead.web.security import ActorDep, FormDep, StateDep

router = APIRouter(route_class=WebRoute)


@router.get("/queue")
def queue_page(request: Request, actor: ActorDep) -> Response:
    """Searches of the agency waiting for review; candidates are never listed here."""
    items = review_queue(web_app(request).services, actor)
    return page(request, "queue.html", items=items)


@router.post("/queue/{search_id}/claim")
def claim(
    request: Request, search_id: int, actor: ActorDep, state: StateDep, form: FormDep
) -> Response:
    """Take a search as its examiner or its (blind) verifier; the service enforces two people."""
    try:
        role = ReviewRole(text(form, "role") or "examiner")
    except ValueError:
        return refused(state, InputError("unknown review role", code="invalid_role"), "/queue")
    try:
        assign_reviewer(web_app(request).services, actor, search_id, actor.username, role)
    except FaceLeadError as exc:
        return refused(state, exc, "/queue")
    return done(
        state, f"Search {search_id} is yours to review as {role.value}.", _review(search_id)
    )


def _review(search_id: int) -> str:
    return f"/searches/{search_id}/review"


def _marks(marks: FaceMarks | None) -> dict[str, Any] | None:
    if marks is None:
        return None
    return {"w": marks.width, "h": marks.height, "box": marks.box, "points": marks.landmarks}


def _viewer_data(search_id: int, packet: ReviewPacket, marks: ReviewMarks) -> dict[str, Any]:
    """What the comparison script needs: image URLs and landmarks, in presentation order."""
    base = f"/searches/{search_id}/image"
    return {
        "probe": {"url": base, "marks": _marks(marks.probe)},
        "candidates": [
            {
                "n": n,
                "subject": c.subject_id,
                "url": f"{base}?photo={c.photo_sha256}",
                "marks": _marks(marks.candidates.get(c.subject_id)),
            }
            for n, c in enumerate(packet.candidates, start=1)
        ],
    }


@router.get("/searches/{search_id}/review")
def review_page(
    request: Request, search_id: int, actor: ActorDep, state: StateDep, c: int = 1
) -> Response:
    """The comparison workspace: probe and one candidate side by side, checklist, decisions."""
    services = web_app(request).services
    packet = show_review(services, actor, search_id)
    marks = review_marks(services, actor, search_id)
    selected = min(max(c, 1), max(len(packet.candidates), 1))
    draft = state.pop_draft(f"review-{search_id}")
    features = packet.features or {}
    return page(
        request,
        "review.html",
        packet=packet,
        selected=selected,
        viewer=_viewer_data(search_id, packet, marks),
        features=FEATURES,
        feature_status={k: draft.get(f"feature-{k}", features.get(k, "")) for k in FEATURES},
        statuses=[s.value for s in FeatureStatus],
        min_features=services.settings.review_min_features,
        draft=draft,
        show_disclaimer=True,
    )


@router.get("/searches/{search_id}/image")
def image(request: Request, search_id: int, actor: ActorDep, photo: str = "") -> Response:
    """The probe, or one candidate photo of the actor's review: authorised, audited per view."""
    services = web_app(request).services
    if photo:
        found = candidate_photo(services, actor, search_id, photo)
    else:
        found = probe_image(services, actor, search_id)
    response = Response(found.data, media_type=found.media_type)
    response.headers["Content-Disposition"] = "inline"
    return secure(response)


@router.post("/searches/{search_id}/features")
def features_submit(
    request: Request, search_id: int, actor: ActorDep, state: StateDep, form: FormDep
) -> Response:
    """The FISWG checklist: every feature compared, not visible, or not compared."""
    status = {name: text(form, f"feature-{name}") for name in FEATURES}
    compared = [n for n, s in status.items() if s == FeatureStatus.COMPARED.value]
    hidden = [n for n, s in status.items() if s == FeatureStatus.NOT_VISIBLE.value]
    try:
        record_features(
            web_app(request).services, actor, search_id, compared, hidden, text(form, "note")
        )
    except FaceLeadError as exc:
        return refused(state, exc, _review(search_id), form, f"review-{search_id}")
    return done(
        state,
        f"Features recorded ({len(compared)} compared). Now record your dispositions.",
        _review(search_id) + "#dispositions",
    )


def decisions_of(form: FormData) -> dict[str, Decision]:
    """Rows ``subject-N`` / ``disposition-N`` / ``notes-N``; rows left blank are not decided."""
    decisions: dict[str, Decision] = {}
    for key, subject in form.multi_items():
        if not key.startswith("subject-") or not isinstance(subject, str):
            continue
        row = key.removeprefix("subject-")
        chosen = text(form, f"disposition-{row}")
        if chosen:
            decisions[subject] = Decision(parse_disposition(chosen), text(form, f"notes-{row}"))
    return decisions


@router.post("/searches/{search_id}/dispositions")
def dispositions_submit(
    request: Request, search_id: int, actor: ActorDep, state: StateDep, form: FormDep
) -> Response:
    """The first examiner's decision on every candidate (or 'exclude the rest')."""
    try:
        others = parse_disposition("exclude") if checked(form, "exclude_others") else None
        summary = dispose(web_app(request).services, actor, search_id, decisions_of(form), others)
    except FaceLeadError as exc:
        return refused(
            state, exc, _review(search_id) + "#dispositions", form, f"review-{search_id}"
        )
    return done(
        state,
        f"Dispositions recorded: search {search_id} is {summary.status.value}.",
        _review(search_id),
    )


@router.post("/searches/{search_id}/verify")
def verify_submit(
    request: Request, search_id: int, actor: ActorDep, state: StateDep, form: FormDep
) -> Response:
    """The verifier's own, blind decision on each possible lead."""
    try:
        summary = verify(
            web_app(request).services,
            actor,
            search_id,
            decisions_of(form),
            escalate=checked(form, "escalate"),
        )
    except FaceLeadError as exc:
        return refused(
            state, exc, _review(search_id) + "#dispositions", form, f"review-{search_id}"
        )
    return done(
        state,
        f"Verification recorded: search {search_id} is {summary.status.value}.",
        _review(search_id),
    )
