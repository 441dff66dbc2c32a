"""Enrolment: deduplication and every refusal code, each leaving nothing behind."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from facelead.config import Settings
from facelead.domain.access import SYSTEM
from facelead.domain.gallery import BookingRef, EnrolmentStatus
from facelead.errors import FaceError, FaceLeadError, ImageError
from facelead.services.context import Services
from facelead.services.gallery import enroll_photo, gallery_stats
from facelead.services.search import _search_gallery
from tests.conftest import make_services

DEFAULT_MODEL = Settings().model_id

pytestmark = pytest.mark.models
REF = BookingRef("S900", "S900-01", agency="TEST")


@pytest.fixture
def services(tmp_path: Path, database_url: str) -> Services:
    return make_services(tmp_path / "home", database_url)


def _jpeg(pixels: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


def _rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path))
    assert bgr is not None, path
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _assert_refused_unchanged(services: Services, data: bytes, code: str) -> None:
    before = gallery_stats(services, SYSTEM)
    with pytest.raises(FaceLeadError) as info:
        enroll_photo(services, SYSTEM, data, "test", REF)
    assert info.value.code == code
    assert gallery_stats(services, SYSTEM) == before
    assert not services.images.exists(hashlib.sha256(data).hexdigest())


def test_enrol_then_duplicate_changes_nothing(services: Services, meds_dir: Path) -> None:
    data = (meds_dir / "S001-01-t10_01.jpg").read_bytes()
    first = enroll_photo(services, SYSTEM, data, "a.jpg", REF)
    assert first.status is EnrolmentStatus.ENROLLED
    stats = gallery_stats(services, SYSTEM)
    again = enroll_photo(services, SYSTEM, data, "b.jpg", BookingRef("S901", "S901-01"))
    assert again.status is EnrolmentStatus.DUPLICATE and again.photo_id == first.photo_id
    assert gallery_stats(services, SYSTEM) == stats
    assert stats["templates_by_model"] == {DEFAULT_MODEL: 1}


def test_refuses_no_face(services: Services) -> None:
    gradient = np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1))
    _assert_refused_unchanged(services, _jpeg(np.dstack([gradient] * 3)), "no_face")


def test_refuses_two_faces_of_comparable_size(services: Services, meds_dir: Path) -> None:
    a, b = _rgb(meds_dir / "S001-01-t10_01.jpg"), _rgb(meds_dir / "S002-01-t10_01.jpg")
    _assert_refused_unchanged(services, _jpeg(np.hstack([a, b])), "multiple_faces")


def test_refuses_face_below_quality_floor(services: Services, meds_dir: Path) -> None:
    dark = (_rgb(meds_dir / "S001-01-t10_01.jpg") * 0.08).astype(np.uint8)
    _assert_refused_unchanged(services, _jpeg(dark), "low_quality")


def test_refuses_undecodable_input(services: Services) -> None:
    _assert_refused_unchanged(services, b"not an image at all", "unsupported_format")
    _assert_refused_unchanged(services, b"", "empty_file")


def test_profile_view_is_stored_without_template(services: Services, meds_dir: Path) -> None:
    result = enroll_photo(
        services, SYSTEM, (meds_dir / "S027-01-t10_02.jpg").read_bytes(), "p", REF
    )
    assert result.status is EnrolmentStatus.STORED_NOT_SEARCHABLE
    stats = gallery_stats(services, SYSTEM)
    assert stats["photos_by_view"] == {"profile": 1}
    assert stats["templates_by_model"] == {}


def test_probe_with_several_faces_needs_a_choice(services: Services, meds_dir: Path) -> None:
    a, b = _rgb(meds_dir / "S001-01-t10_01.jpg"), _rgb(meds_dir / "S002-01-t10_01.jpg")
    enroll_photo(services, SYSTEM, (meds_dir / "S002-01-t10_01.jpg").read_bytes(), "g", REF)
    probe = _jpeg(np.hstack([a, b]))
    with pytest.raises(FaceError) as info:
        _search_gallery(services, probe)
    assert info.value.code == "face_choice_required"
    assert len(info.value.details["faces"]) == 2
    with pytest.raises(FaceError) as out_of_range:
        _search_gallery(services, probe, face_index=2)
    assert out_of_range.value.code == "face_index_out_of_range"
    scores = [_search_gallery(services, probe, face_index=i).candidates[0].score for i in (0, 1)]
    assert max(scores) > 0.9 > min(scores)  # only S002's face is its own booking photo


def test_refused_image_errors_are_typed(services: Services) -> None:
    with pytest.raises(ImageError):
        _search_gallery(services, b"GIF89a" + b"\0" * 20)
