"""Template cache and evaluation detection policy (no models needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facelead.biometrics.types import Face
from facelead.errors import InputError
from facelead.eval.cache import TemplateCache, safe_key
from facelead.eval.templates import (
    FOUND,
    FOUND_ON_RETRY,
    NO_FACE,
    DetectionPolicy,
    centre_face,
    detect_with_retry,
    face_fields,
    face_from_fields,
)


def test_cache_shards_merge_and_survive_a_partial_write(tmp_path: Path) -> None:
    cache = TemplateCache(tmp_path)
    cache.append("emb@x@1", ["a", "b"], {"v": np.eye(2, dtype=np.float32)})
    cache.append("emb@x@1", ["c"], {"v": np.ones((1, 2), dtype=np.float32)})
    (cache.folder("emb@x@1") / ".shard-99.tmp.npz").write_bytes(b"killed mid-write")
    records = cache.load("emb@x@1")
    assert sorted(records) == ["a", "b", "c"]
    np.testing.assert_array_equal(records["b"]["v"], [0, 1])
    assert cache.load("emb@other@1") == {}
    with pytest.raises(InputError):
        cache.append("emb@x@1", ["a"], {"v": np.zeros((2, 2))})


def test_cache_keys_cannot_escape_the_root() -> None:
    assert safe_key("emb/../../etc") == "emb_.._.._etc"
    with pytest.raises(InputError):
        safe_key("..")


def _face(cx: float, cy: float, score: float = 0.9) -> Face:
    marks = np.array(
        [[cx - 10, cy - 5], [cx + 10, cy - 5], [cx, cy], [cx - 8, cy + 10], [cx + 8, cy + 10]]
    )
    return Face((cx - 20, cy - 25, 40.0, 50.0), marks.astype(np.float32), score)


def test_centre_face_is_nearest_the_image_centre() -> None:
    big_corner = Face((0, 0, 120, 120), np.zeros((5, 2), np.float32), 0.99)
    centred = _face(125, 125)
    assert centre_face([big_corner, centred], 250, 250) is centred
    assert centre_face([], 250, 250) is None


class _Fake:
    def __init__(self, faces: list[Face]) -> None:
        self.faces = faces

    def predict(self, image: np.ndarray) -> list[Face]:
        return self.faces


def test_detection_retries_at_lower_thresholds() -> None:
    image = np.zeros((250, 250, 3), np.uint8)
    face = _face(125, 125, 0.4)
    assert detect_with_retry(image, [_Fake([face])]) == (FOUND, face)  # type: ignore[list-item]
    assert detect_with_retry(image, [_Fake([]), _Fake([face])]) == (FOUND_ON_RETRY, face)  # type: ignore[list-item]
    assert detect_with_retry(image, [_Fake([]), _Fake([])]) == (NO_FACE, None)  # type: ignore[list-item]
    assert "0.6-0.3-0.1" in DetectionPolicy().key


def test_face_records_round_trip() -> None:
    face = _face(100, 90)
    again = face_from_fields(face_fields(FOUND, face, 0b101))
    assert again is not None
    assert again.box == pytest.approx(face.box)
    np.testing.assert_allclose(again.landmarks, face.landmarks)
    assert face_from_fields(face_fields(NO_FACE, None, 0)) is None
