"""Probe and candidate images, one per request, each look audited.

``review show --images`` writes a whole review to a folder; the API and the web
application instead serve one image at a time, so every image a person looks
at is its own audit event naming the search, the image and (for a candidate)
the gallery subject. Who may see what follows the review rules: the requester
sees their probe but never a candidate; a reviewer sees the probe and exactly
the candidates their own review presents (a verifier: only the possible
leads); a supervisor of the agency sees the probe.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from facelead.domain import policy
from facelead.domain.access import Action, Actor, Role
from facelead.domain.cases import ReviewRole
from facelead.errors import ConflictError, NotFoundError, PermissionDenied
from facelead.services.context import Services
from facelead.services.review import candidates_by_subject, examiner_review, leads_of, open_search
from facelead.services.review_view import image_suffix
from facelead.services.uow import Scope, perform
from facelead.store import cases as cases_repo
from facelead.store import review as review_repo
from facelead.store.case_models import SearchRecord

MEDIA_TYPES = {
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".webp": "image/webp",
}


@dataclass(frozen=True)
class ImageFile:
    sha256: str
    data: bytes
    media_type: str


def _image(data: bytes, sha256: str) -> ImageFile:
    return ImageFile(sha256, data, MEDIA_TYPES.get(image_suffix(data), "application/octet-stream"))


def probe_image(services: Services, actor: Actor, search_id: int) -> ImageFile:
    """The probe of a search, for its requester, its reviewers and the agency's supervisors.

    Anyone but the requester looks at it as part of review work, so needs a
    current training certification, as reviewing does.
    """
    with perform(
        services, actor, Action.IMAGE_VIEW, object_type="search", object_id=str(search_id)
    ) as scope:
        search = open_search(scope, search_id)
        sha = search.probe.image_sha256
        scope.details.update(image="probe", image_sha256=sha)
        if actor.username != search.requester_username:
            reviewers = {a.examiner_username for a in search.assignments}
            if actor.username not in reviewers and Role.SUPERVISOR not in actor.roles:
                raise PermissionDenied(
                    "the probe is shown to the requester, the reviewers of the search "
                    "and supervisors",
                    code="image_not_permitted",
                )
            if not actor.certified_on(dt.date.today()):
                raise PermissionDenied(
                    f"{actor.username}'s training certification has lapsed or is missing",
                    code="training_expired",
                )
        return _image(services.probes.get(sha), sha)


def candidate_photo(
    services: Services, actor: Actor, search_id: int, photo_sha256: str
) -> ImageFile:
    """One gallery photo that the actor's own review of the search presents to them."""
    sha = (photo_sha256 or "").strip().lower()
    with perform(services, actor, Action.CANDIDATES_VIEW) as scope:
        scope.details.update(image="candidate", image_sha256=sha)
        search = open_search(scope, search_id)
        visible = _visible_photos(scope, search)
        if sha not in visible:
            raise NotFoundError(
                "no such candidate photo in your review of this search", code="image_not_found"
            )
        scope.details["subject_ids"] = [visible[sha]]
        return _image(services.images.get(sha), sha)


def _visible_photos(scope: Scope, search: SearchRecord) -> dict[str, str]:
    """Photo SHA-256 -> subject id of every candidate the actor's review presents.

    Without a review of the current round (an assignment made outside the
    review workflow) the candidate-list rule applies: assigned examiners only.
    """
    session, username = scope.session, scope.actor.username
    round_no = review_repo.current_round(session, search.id)
    review = review_repo.review_for(session, search.id, username, round_no)
    everyone = candidates_by_subject(session, search)
    if review is None:
        assigned = cases_repo.assigned_usernames(session, search.id)
        policy.check_candidate_access(username, search.requester_username, assigned)
        keys = list(everyone)
    elif review.review_role == ReviewRole.EXAMINER.value:
        first = examiner_review(session, search.id, round_no)
        if first is not None and first.id != review.id:
            raise ConflictError(
                "another examiner has already reviewed this round", code="review_already_done"
            )
        keys = list(everyone)
    else:
        first = examiner_review(session, search.id, round_no)
        keys = list(leads_of(first)) if first is not None else []
    return {everyone[k][1].image_sha256: k for k in keys if k in everyone}
