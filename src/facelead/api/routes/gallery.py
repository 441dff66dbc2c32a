"""Gallery: the records bureau enrols booking photos, one per request; counts for oversight."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile
from pydantic import BaseModel, Field

from facelead.api.deps import CurrentActor, ServicesDep
from facelead.api.errors import error_responses
from facelead.api.fields import Name
from facelead.api.models import EnrolmentOut
from facelead.api.uploads import FileParts, read_part, require_multipart, safe_filename
from facelead.domain.gallery import BookingRef, PhotoView
from facelead.errors import InputError
from facelead.services.gallery import enroll_photo, gallery_stats

router = APIRouter(prefix="/gallery", tags=["gallery"])


class BookingForm(BaseModel):
    """The booking a photo belongs to (a manifest row, as form fields)."""

    subject_id: Name
    booking_number: Name
    booking_date: dt.date | None = None
    agency: Name = "UNKNOWN"
    view: PhotoView | None = Field(default=None, description="Default: inferred from the face.")


@router.post(
    "/photos",
    status_code=201,
    dependencies=[Depends(require_multipart)],
    responses=error_responses(413, 415),
)
def enrol_route(
    booking: Annotated[BookingForm, Form()],
    image: Annotated[UploadFile, File(description="One booking photo.")],
    parts: FileParts,
    actor: CurrentActor,
    services: ServicesDep,
) -> EnrolmentOut:
    """Records bureau: enrol one booking photo; the same bytes twice change nothing."""
    if len(parts) > 1:
        raise InputError("one booking photo per request", code="one_image_per_request")
    ref = BookingRef(
        booking.subject_id,
        booking.booking_number,
        booking_date=booking.booking_date,
        agency=booking.agency,
        view=booking.view,
    )
    result = enroll_photo(services, actor, read_part(image), safe_filename(image), ref)
    return EnrolmentOut.model_validate(result)


@router.get("/stats")
def stats_route(actor: CurrentActor, services: ServicesDep) -> dict[str, Any]:
    """Counts of subjects, bookings, photos and templates per model."""
    return gallery_stats(services, actor)
