"""The new-search form: case, purpose, provenance, edits and one still probe.

A probe showing several people is not guessed at: the search service
refuses it with ``face_choice_required`` and the faces it found, and the
form comes back with those faces to choose from. The uploaded bytes wait in
the requester's session meanwhile (never in the probe store: nothing is
stored until a search is accepted), shown only to that session.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from facelead.domain.search import ProbeProvenance, SearchRequest
from facelead.errors import FaceLeadError, InputError, NotFoundError
from facelead.services.search import submit_search
from facelead.web.context import page, web_app
from facelead.web.forms import done, draft_of, integer, message_of, text, texts, upload
from facelead.web.media import media_type
from facelead.web.routing import WebRoute, secure
from facelead.web.security import ActorDep, StateDep, UploadDep
from facelead.web.sessions import PageState, PendingProbe

router = APIRouter(route_class=WebRoute)

FACE_MARGIN = 0.35  # context around each face in the picker's thumbnails


def _choices(request: Request) -> dict[str, list[str]]:
    settings = web_app(request).services.settings
    return {
        "purposes": settings.search_purposes,
        "sources": settings.probe_sources,
        "edits": settings.probe_edits,
    }


def _form_page(
    request: Request,
    values: dict[str, Any],
    status: int = 200,
    error: str = "",
    faces: list[dict[str, Any]] | None = None,
    pending: PendingProbe | None = None,
) -> Response:
    settings = web_app(request).services.settings
    return page(
        request,
        "search_new.html",
        status,
        values=values,
        error=error,
        faces=faces or [],
        pending=pending,
        min_justification=settings.min_justification_chars,
        max_upload_mib=settings.max_upload_bytes // (1024 * 1024),
        max_upload_bytes=settings.max_upload_bytes,
        **_choices(request),
    )


@router.get("/search/new")
def new_search(request: Request, actor: ActorDep, state: StateDep, case: str = "") -> Response:
    state.pending_probe = None
    return _form_page(request, {"case": case, "edits": []})


def _values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = dict(draft_of(form))
    values["edits"] = texts(form, "edits")
    return values


def _probe(form: FormData, state: PageState) -> tuple[bytes, str]:
    """A newly uploaded probe, or the one waiting for a face choice."""
    file = upload(form, "probe")
    if file is not None:
        return file.file.read(), file.filename or "probe"
    pending = state.pending_probe
    if pending is not None and text(form, "pending") == pending.token:
        return pending.data, pending.filename
    raise InputError("choose a probe image to upload", code="probe_required")


def _request(form: FormData) -> SearchRequest:
    provenance = ProbeProvenance(
        source_type=text(form, "source_type"),
        how_obtained=text(form, "how_obtained"),
        captured_by=text(form, "captured_by"),
        edits=tuple(texts(form, "edits")),
    )
    return SearchRequest(
        purpose=text(form, "purpose"),
        justification=text(form, "justification"),
        provenance=provenance,
        face_index=integer(form, "face_index"),
    )


@router.post("/search/new")
async def submit(request: Request, actor: ActorDep, state: StateDep, form: UploadDep) -> Response:
    """Submit; a refusal comes back on the form, with the faces to choose from if that is why."""
    values, services = _values(form), web_app(request).services
    try:
        data, filename = _probe(form, state)
        search_request = _request(form)
    except FaceLeadError as exc:
        waiting = state.pending_probe if text(form, "pending") else None
        return _form_page(request, values, exc.http_status, message_of(exc), pending=waiting)
    try:
        receipt = await run_in_threadpool(
            submit_search, services, actor, text(form, "case"), data, search_request
        )
    except FaceLeadError as exc:
        return _refused(request, state, values, exc, PendingProbe(_token(), data, filename))
    state.pending_probe = None
    state.remember_case(receipt.case_number)
    return done(
        state,
        f"Search {receipt.search_id} submitted on case {receipt.case_number}: "
        "it waits for examiner review. You will not see candidates; you receive a lead "
        "report only after two examiners agree.",
        f"/searches/{receipt.search_id}",
    )


def _token() -> str:
    return secrets.token_urlsafe(16)


def _refused(
    request: Request,
    state: PageState,
    values: dict[str, Any],
    exc: FaceLeadError,
    probe: PendingProbe,
) -> Response:
    """The form again, the probe kept (no second upload); with the faces to choose from."""
    faces = [_face(f) for f in exc.details.get("faces", [])]
    state.pending_probe = probe
    choose = bool(faces) and exc.code in ("face_choice_required", "face_index_out_of_range")
    if choose:
        values.pop("face_index", None)
    if choose:  # the picker says it better than the refusal's own words
        return _form_page(request, values, 200, "", faces, probe)
    return _form_page(request, values, exc.http_status, message_of(exc), faces, probe)


def _face(face: dict[str, Any]) -> dict[str, Any]:
    """A detected face as the picker shows it: its box, and a thumbnail view box around it."""
    x, y, w, h = (float(v) for v in face.get("box", (0, 0, 0, 0)))
    side = max(w, h) * (1 + 2 * FACE_MARGIN)
    cx, cy = x + w / 2, y + h / 2
    return {
        "index": int(face.get("index", 0)),
        "box": (round(x, 1), round(y, 1), round(w, 1), round(h, 1)),
        "view": f"{cx - side / 2:.1f} {cy - side / 2:.1f} {side:.1f} {side:.1f}",
        "score": float(face.get("score", 0.0)),
    }


@router.get("/search/pending/{token}")
def pending_probe(token: str, actor: ActorDep, state: StateDep) -> Response:
    """The probe this session uploaded and has not yet searched; nobody else's."""
    pending = state.pending_probe
    if pending is None or not secrets.compare_digest(pending.token, token):
        raise NotFoundError("no probe is waiting for a face choice", code="not_found")
    media = media_type(pending.data) or "application/octet-stream"
    return secure(Response(pending.data, media_type=media))
