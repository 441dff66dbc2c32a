"""Alignment, fusion, quality and weight integrity: the pure parts of the engine."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from facelead.biometrics.align import ARCFACE_112, similarity_transform
from facelead.biometrics.fusion import FusionConfig, fuse, model_config
from facelead.biometrics.quality import pose_from_landmarks
from facelead.biometrics.select import face_for_enrolment, face_for_probe
from facelead.biometrics.types import Face
from facelead.biometrics.weights import ALL_WEIGHTS, WeightFile, verified_path
from facelead.errors import ConfigurationError, FaceError, ModelIntegrityError


@given(
    angle=st.floats(-math.pi, math.pi),
    scale=st.floats(0.2, 5.0),
    tx=st.floats(-300, 300),
    ty=st.floats(-300, 300),
)
def test_similarity_transform_recovers_a_known_transform(
    angle: float, scale: float, tx: float, ty: float
) -> None:
    rotation = scale * np.array(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    )
    src = ARCFACE_112 * 1.7 + 11.0
    dst = src @ rotation.T + np.array([tx, ty])
    matrix = similarity_transform(src, dst)
    np.testing.assert_allclose(src @ matrix[:, :2].T + matrix[:, 2], dst, atol=1e-6)


def _unit(rng: np.random.Generator, dim: int) -> np.ndarray:
    v = rng.normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_fused_inner_product_is_weighted_sum_of_cosines() -> None:
    rng = np.random.default_rng(7)
    config = model_config("fusion-v1")
    dims = {"sface": 128, "facenet": 512, "dlib": 128}
    a = {name: _unit(rng, dim) for name, dim in dims.items()}
    b = {name: _unit(rng, dim) for name, dim in dims.items()}
    expected = sum(w * float(a[n] @ b[n]) for n, w in config.members)
    fa, fb = fuse(config, a), fuse(config, b)
    assert fa.shape == (768,)
    assert float(fa @ fb) == pytest.approx(expected, abs=1e-5)
    assert float(np.linalg.norm(fa)) == pytest.approx(1.0, abs=1e-5)


def test_fusion_config_rejects_bad_weights() -> None:
    with pytest.raises(ConfigurationError):
        FusionConfig("bad", (("sface", 0.7), ("dlib", 0.7)))
    with pytest.raises(ConfigurationError) as info:
        model_config("no-such-model")
    assert info.value.code == "unknown_model"


def _face(landmarks: list[tuple[float, float]], size: float = 100.0) -> Face:
    return Face((0.0, 0.0, size, size), np.array(landmarks, dtype=np.float32), 0.9)


def test_pose_from_landmarks() -> None:
    frontal = _face([(30, 40), (70, 40), (50, 60), (35, 80), (65, 80)])
    yaw, roll = pose_from_landmarks(frontal)
    assert abs(yaw) < 1 and abs(roll) < 1
    turned = _face([(30, 40), (70, 40), (68, 60), (35, 80), (65, 80)])
    assert pose_from_landmarks(turned)[0] > 60
    tilted = _face([(30, 40), (70, 80), (50, 60), (35, 80), (65, 80)])
    assert pose_from_landmarks(tilted)[1] == pytest.approx(45, abs=0.1)


def test_face_selection_rules() -> None:
    big = _face([(30, 40), (70, 40), (50, 60), (35, 80), (65, 80)], 100)
    small = _face([(3, 4), (7, 4), (5, 6), (3, 8), (6, 8)], 20)
    similar = _face([(3, 4), (7, 4), (5, 6), (3, 8), (6, 8)], 80)
    assert face_for_enrolment([big, small]) is big
    for faces, code in (([], "no_face"), ([big, similar], "multiple_faces")):
        with pytest.raises(FaceError) as info:
            face_for_enrolment(faces)
        assert info.value.code == code
    assert face_for_probe([big], None) == (0, big)
    assert face_for_probe([big, small], 1) == (1, small)


def test_weights_are_pinned_and_verified() -> None:
    for weight in ALL_WEIGHTS:
        assert len(weight.sha256) == 64
        assert "68" not in weight.relpath  # never the non-commercial 68-point predictor
    wrong = WeightFile("facelead", "facelead", "py.typed", "0" * 64, "test")
    with pytest.raises(ModelIntegrityError) as info:
        verified_path(wrong)
    assert info.value.code == "model_integrity"
    missing = WeightFile("no_such_package_xyz", "x==1", "w.bin", "0" * 64, "test")
    with pytest.raises(ModelIntegrityError) as info:
        verified_path(missing)
    assert info.value.code == "model_missing"


@pytest.mark.models
def test_installed_weights_match_their_pins() -> None:
    for weight in ALL_WEIGHTS:
        assert isinstance(verified_path(weight), Path)
