"""Searches: submit one probe (multipart), status, and the candidate list for its examiners."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import APIRouter, Depends, File, Form, UploadFile
from pydantic import BaseModel, Field

from facelead.api.deps import CurrentActor, ServicesDep
from facelead.api.errors import error_responses
from facelead.api.fields import Line, Name, Notes, SearchId
from facelead.api.models import CandidateListOut, ReceiptOut, SearchSummaryOut
from facelead.api.uploads import FileParts, read_part, require_multipart
from facelead.domain.search import ProbeProvenance, SearchRequest
from facelead.services.search import search_status, submit_search, view_candidates

router = APIRouter(prefix="/searches", tags=["searches"])


class SearchForm(BaseModel):
    """The form fields of a search; the probe is the one file part."""

    case: Name = Field(description="The open case of your agency this search is for.")
    purpose: Line = Field(description="Permitted purpose, e.g. criminal-investigation.")
    justification: Notes = Field(description="Why the search is needed.")
    source: Line = Field(description="Probe source type, e.g. cctv-still.")
    obtained_by: Line = Field(description="How the probe was obtained (e.g. warrant).")
    captured_by: Line = Field(description="Who captured the image (person or device).")
    edits: list[Line] = Field(default=[], max_length=20, description="Edits made, in order.")
    face_index: int | None = Field(default=None, ge=0, le=1000, description="0 = largest face.")
    top_k: int | None = Field(default=None, ge=1, le=1000, description="Candidates to keep.")


@router.post(
    "",
    status_code=201,
    dependencies=[Depends(require_multipart)],
    responses=error_responses(413, 415, 429),
)
def submit_route(
    form: Annotated[SearchForm, Form()],
    probe: Annotated[UploadFile, File(description="One still image: no video, no animation.")],
    parts: FileParts,
    actor: CurrentActor,
    services: ServicesDep,
) -> ReceiptOut:
    """Submit one probe for a case (investigators); the receipt never lists candidates.

    Candidates go to the examiners assigned to the search. Sending more than
    one file is refused as ``batch_not_allowed`` (and audited): one probe per
    search, no watch-listing.
    """
    provenance = ProbeProvenance(form.source, form.obtained_by, form.captured_by, tuple(form.edits))
    request = SearchRequest(
        form.purpose, form.justification, provenance, face_index=form.face_index, top_k=form.top_k
    )
    # Several files go to the service as they are: its single-probe rule refuses them, audited.
    data = read_part(probe) if len(parts) <= 1 else cast(bytes, [read_part(p) for p in parts])
    receipt = submit_search(services, actor, form.case, data, request)
    return ReceiptOut.model_validate(receipt)


@router.get("/{search_id}")
def status_route(
    search_id: SearchId, actor: CurrentActor, services: ServicesDep
) -> SearchSummaryOut:
    """The status of a search, for its requester and reviewers alike; never its candidates."""
    return SearchSummaryOut.model_validate(search_status(services, actor, search_id))


@router.get("/{search_id}/candidates")
def candidates_route(
    search_id: SearchId, actor: CurrentActor, services: ServicesDep
) -> CandidateListOut:
    """The ranked candidate list: assigned examiners only, never the requester; audited.

    Closed to a reviewer whose blind review is still open (use ``/review``).
    """
    return CandidateListOut.model_validate(view_candidates(services, actor, search_id))
