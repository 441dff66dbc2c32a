"""Enrolment of booking photos and gallery statistics."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from facelead.biometrics.select import face_for_enrolment
from facelead.domain.access import Action, Actor
from facelead.domain.gallery import BookingRef, EnrolmentResult, EnrolmentStatus, PhotoView
from facelead.errors import ConflictError, FaceError, FaceLeadError, InputError
from facelead.services.context import ACTIVE_MODEL, Services
from facelead.services.uow import Scope, perform
from facelead.store import gallery as repo
from facelead.store import lifecycle as lifecycle_repo
from facelead.store.lifecycle import REMOVED_PREFIX

ENROL_RETRIES = 3


def enroll_photo(
    services: Services, actor: Actor, data: bytes, source: str, ref: BookingRef
) -> EnrolmentResult:
    """Enrol one booking photo, or raise a FaceLeadError and change nothing.

    The same bytes enrolled twice change nothing (content address = dedup key).
    A profile view is kept for examiners but gets no template: profile-to-
    frontal scores are unreliable and would only add false candidates.
    Two clients enrolling the same subject or bytes at once race on a unique
    key; the loser's transaction is rolled back (nothing audited, nothing
    written) and retried, and then finds the row the winner committed.
    """
    for attempt in range(ENROL_RETRIES):
        try:
            with perform(services, actor, Action.GALLERY_ENROL, object_type="photo") as scope:
                return enrol_in_scope(services, scope, data, source, ref)
        except IntegrityError:
            if attempt == ENROL_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def enrol_in_scope(
    services: Services, scope: Scope, data: bytes, source: str, ref: BookingRef
) -> EnrolmentResult:
    """The body of ``enroll_photo`` inside a caller's ``perform`` (bulk import adds its status).

    Images of a sealed, expunged or purged subject are refused for good
    (``record_removed``): a stale export cannot bring them back.
    """
    sha = hashlib.sha256(data).hexdigest()
    scope.details.update(
        source=Path(source).name,
        subject_id=ref.subject_id,
        booking=ref.booking_number,
        image_sha256=sha,
    )
    if ref.subject_id.startswith(REMOVED_PREFIX):
        raise InputError(
            f"subject ids starting {REMOVED_PREFIX!r} are reserved for removed records",
            code="invalid_subject_id",
        )
    if lifecycle_repo.photo_removed(scope.session, sha):
        raise ConflictError(
            "these image bytes belong to a removed (sealed, expunged or purged) record",
            code="record_removed",
        )
    existing = repo.find_photo_by_sha(scope.session, sha)
    if existing is not None:
        scope.object_id, scope.details["status"] = str(existing.id), "duplicate"
        return EnrolmentResult(source, EnrolmentStatus.DUPLICATE, ref.subject_id, existing.id)
    photo_id, status = _enrol_new(services, scope, data, source, ref)
    scope.object_id, scope.details["status"] = str(photo_id), status.value
    return EnrolmentResult(source, status, ref.subject_id, photo_id)


def _enrol_new(
    services: Services, scope: Scope, data: bytes, source: str, ref: BookingRef
) -> tuple[int, EnrolmentStatus]:
    decoded = services.decode(data)
    pipeline = services.pipeline
    face = face_for_enrolment(pipeline.detect(decoded.pixels))
    analysis = pipeline.analyse(decoded.pixels, face)
    view = ref.view or _inferred_view(analysis.quality.measures, pipeline.floor.max_abs_yaw_deg)
    if view is PhotoView.FRONTAL and not analysis.quality.acceptable:
        raise FaceError(
            f"face below the quality floor: {', '.join(analysis.quality.failures)}",
            code="low_quality",
            failures=list(analysis.quality.failures),
            measures=analysis.quality.measures,
        )
    session = scope.session
    existing = repo.find_photo_by_sha(session, decoded.sha256)
    if existing is not None:  # another client committed these bytes while we analysed them
        return existing.id, EnrolmentStatus.DUPLICATE
    subject = repo.get_or_create_subject(session, ref.subject_id)
    booking = repo.get_or_create_booking(
        session, subject, ref.booking_number, ref.booking_date, ref.agency
    )
    photo = repo.add_photo(
        session,
        subject=subject,
        booking=booking,
        image_sha256=decoded.sha256,
        view=view.value,
        width=int(decoded.pixels.shape[1]),
        height=int(decoded.pixels.shape[0]),
        face_box=list(face.box),
        landmarks=face.landmarks.round(2).tolist(),
        quality=analysis.quality.measures,
        source_name=Path(source).name[-255:],
    )
    if view is PhotoView.FRONTAL:
        repo.add_template(session, photo, analysis.model_id, analysis.template)
        # The gallery's first template fixes its model: a later change of the configured
        # default (a new release) must not leave searches on an empty index; only a
        # completed `gallery reindex` moves the gallery to another model.
        lifecycle_repo.pin_setting(session, ACTIVE_MODEL, analysis.model_id, scope.actor.username)
    # The file last: a refusal above (a booking of another subject...) leaves no orphan bytes.
    services.images.put(data)
    if view is PhotoView.FRONTAL:
        return photo.id, EnrolmentStatus.ENROLLED
    return photo.id, EnrolmentStatus.STORED_NOT_SEARCHABLE


def _inferred_view(measures: dict[str, float], max_yaw: float) -> PhotoView:
    return PhotoView.PROFILE if abs(measures["yaw_deg"]) > max_yaw else PhotoView.FRONTAL


def enroll_files(
    services: Services,
    actor: Actor,
    paths: Iterable[Path],
    refs: dict[Path, BookingRef] | None = None,
    subject_id: str | None = None,
    agency: str = "UNKNOWN",
) -> Iterator[EnrolmentResult]:
    """Enrol many files, one transaction each; a refusal is reported, not fatal."""
    for path in paths:
        ref = _ref_for(path, refs, subject_id, agency)
        try:
            data = path.read_bytes()
            yield enroll_photo(services, actor, data, str(path), ref)
        except OSError as exc:
            yield _refused(path, ref, InputError(f"cannot read: {exc.strerror}", code="unreadable"))
        except FaceLeadError as exc:
            yield _refused(path, ref, exc)


def _ref_for(
    path: Path, refs: dict[Path, BookingRef] | None, subject_id: str | None, agency: str
) -> BookingRef:
    if refs is not None:
        ref = refs.get(path.resolve())
        if ref is None:
            raise InputError(f"{path} is not listed in the manifest", code="not_in_manifest")
        return ref
    subject = subject_id or path.stem
    return BookingRef(subject_id=subject, booking_number=f"{subject}:{path.stem}", agency=agency)


def _refused(path: Path, ref: BookingRef, exc: FaceLeadError) -> EnrolmentResult:
    return EnrolmentResult(
        str(path), EnrolmentStatus.REFUSED, ref.subject_id, code=exc.code, message=exc.message
    )


def gallery_stats(services: Services, actor: Actor) -> dict[str, Any]:
    with perform(services, actor, Action.GALLERY_READ, object_type="gallery") as scope:
        stats = repo.gallery_stats(scope.session)
    stats["model_id"] = services.active_model_id()
    return stats
