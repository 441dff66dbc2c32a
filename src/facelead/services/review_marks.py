"""Face boxes and landmarks for the comparison screen's overlay and eye alignment.

The comparison viewer draws the detector's five landmarks over the probe
and over each candidate, and aligns the two faces on the eyes. The same rule
as ``show_review`` decides whose marks a reviewer gets: the probe's and those
of the candidates their own review of the current round presents (all for
the first examiner, only the possible leads for the verifier). One audited
``candidates.view`` per request. The images themselves come one by one from
``services.images``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from facelead.domain.access import Action, Actor
from facelead.services.context import Services
from facelead.services.review import open_search, own_review
from facelead.services.review_view import _presented
from facelead.services.uow import perform
from facelead.store import gallery as gallery_repo
from facelead.store import review as repo
from facelead.store.case_models import SearchRecord

_MARKS_CACHE_SIZE = 256


@dataclass(frozen=True)
class FaceMarks:
    """Where the face is in one image: its box and five landmarks, in image pixels.

    Landmark order follows the detector: right eye, left eye (image-left
    first), nose tip, right and left mouth corners.
    """

    width: int
    height: int
    box: tuple[float, float, float, float] | None
    landmarks: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class ReviewMarks:
    probe: FaceMarks
    candidates: dict[str, FaceMarks]  # by gallery subject id


def review_marks(services: Services, actor: Actor, search_id: int) -> ReviewMarks:
    """Face boxes and landmarks of the probe and every presented candidate (for the overlay)."""
    with perform(services, actor, Action.CANDIDATES_VIEW) as scope:
        search = open_search(scope, search_id)
        round_no = repo.current_round(scope.session, search.id)
        review = own_review(scope, search, round_no)
        presented = _presented(scope.session, search, review)
        candidates: dict[str, FaceMarks] = {}
        for subject, (_, info) in presented.items():
            photo = gallery_repo.find_photo_by_sha(scope.session, info.image_sha256)
            if photo is not None:
                candidates[subject] = FaceMarks(
                    photo.width,
                    photo.height,
                    _box(photo.face_box),
                    _points(photo.landmarks),
                )
        scope.details.update(step="landmarks", round=round_no, subject_ids=list(candidates))
        return ReviewMarks(_probe_marks(services, search), candidates)


def _box(values: object) -> tuple[float, float, float, float] | None:
    if isinstance(values, list | tuple) and len(values) == 4:
        x, y, w, h = (float(v) for v in values)
        return (x, y, w, h)
    return None


def _points(values: object) -> tuple[tuple[float, float], ...]:
    if not isinstance(values, list | tuple):
        return ()
    return tuple((float(p[0]), float(p[1])) for p in values if len(p) == 2)


class _MarksCache:
    """Probe landmarks by (probe, face, model): detecting again on every page view is waste."""

    def __init__(self, size: int) -> None:
        self.size, self.lock = size, threading.Lock()
        self.items: OrderedDict[tuple[str, int, str], FaceMarks] = OrderedDict()

    def get(self, key: tuple[str, int, str]) -> FaceMarks | None:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
            return self.items.get(key)

    def put(self, key: tuple[str, int, str], marks: FaceMarks) -> None:
        with self.lock:
            self.items[key] = marks
            while len(self.items) > self.size:
                self.items.popitem(last=False)


_marks_cache = _MarksCache(_MARKS_CACHE_SIZE)


def _probe_marks(services: Services, search: SearchRecord) -> FaceMarks:
    """The probe's searched face, detected again (probes store no landmarks)."""
    probe = search.probe
    key = (probe.image_sha256, search.face_index, services.settings.model_id)
    cached = _marks_cache.get(key)
    if cached is not None:
        return cached
    decoded = services.decode(services.probes.get(probe.image_sha256))
    faces = services.pipeline.detect(decoded.pixels)
    height, width = int(decoded.pixels.shape[0]), int(decoded.pixels.shape[1])
    marks = FaceMarks(width, height, None, ())
    if 0 <= search.face_index < len(faces):
        face = faces[search.face_index]
        marks = FaceMarks(
            width,
            height,
            _box(list(face.box)),
            tuple((float(x), float(y)) for x, y in face.landmarks),
        )
    _marks_cache.put(key, marks)
    return marks
