"""Probe and candidate images: only for those allowed to see them; each view audited."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from facelead.api.deps import CurrentActor, ServicesDep
from facelead.api.fields import SearchId
from facelead.services.images import MEDIA_TYPES, ImageFile, candidate_photo, probe_image

router = APIRouter(prefix="/searches", tags=["images"])

IMAGE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {media: {} for media in sorted(set(MEDIA_TYPES.values()))},
        "description": "The image bytes as stored.",
    }
}
PhotoSha = Annotated[
    str, Path(pattern=r"^[0-9a-fA-F]{64}$", description="photo_sha256 of a candidate.")
]


def image_response(image: ImageFile) -> Response:
    return Response(
        image.data,
        media_type=image.media_type,
        headers={"Content-Disposition": "inline", "ETag": f'"{image.sha256}"'},
    )


@router.get("/{search_id}/probe", response_class=Response, responses=IMAGE_RESPONSE)
def probe_route(search_id: SearchId, actor: CurrentActor, services: ServicesDep) -> Response:
    """The probe: for its requester, the search's reviewers and supervisors of the agency."""
    return image_response(probe_image(services, actor, search_id))


@router.get("/{search_id}/photos/{photo_sha256}", response_class=Response, responses=IMAGE_RESPONSE)
def photo_route(
    search_id: SearchId, photo_sha256: PhotoSha, actor: CurrentActor, services: ServicesDep
) -> Response:
    """A candidate's gallery photo, for a reviewer whose own review presents that candidate."""
    return image_response(candidate_photo(services, actor, search_id, photo_sha256))
