"""Template centres: the shipped file is pinned, centring is exact, and evaluations derive it."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from facelead.biometrics.centre import (
    CENTRE_LFW_V1,
    CENTRE_LFW_V2,
    CentreFile,
    centre_metadata,
    centred,
    centred_rows,
    load_centres,
    write_centres,
)
from facelead.biometrics.decode import decode_image
from facelead.biometrics.detect import YuNetDetector
from facelead.biometrics.embed import EMBEDDERS, CentredEmbedder
from facelead.biometrics.fusion import model_config
from facelead.config import Settings
from facelead.errors import ModelIntegrityError
from facelead.eval.cache import TemplateCache
from facelead.eval.templates import extract


@pytest.mark.parametrize("file", [CENTRE_LFW_V1, CENTRE_LFW_V2])
def test_shipped_centres_are_pinned_and_serve_the_default_members(file: CentreFile) -> None:
    centres = load_centres(file)
    assert {n: v.shape for n, v in centres.items()} == {
        "sface-flip": (128,),
        "facenet-v2": (512,),
    }
    for vector in centres.values():
        assert np.all(np.isfinite(vector)) and 0 < np.linalg.norm(vector) < 1
    assert 0 <= centre_metadata(file)["blend"] <= 1.5
    members = [EMBEDDERS[name]() for name in model_config(Settings().model_id).names]
    assert all(isinstance(m, CentredEmbedder) for m in members)


def test_a_changed_or_missing_centre_file_is_refused(tmp_path: Path) -> None:
    shutil.copy(CENTRE_LFW_V1.path, tmp_path / "copy.npz")
    good = CentreFile("copy", CENTRE_LFW_V1.sha256, tmp_path)
    assert set(load_centres(good)) == {"sface-flip", "facenet-v2"}
    data = bytearray((tmp_path / "copy.npz").read_bytes())
    data[-40] ^= 0xFF
    (tmp_path / "bad.npz").write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError) as info:
        load_centres(CentreFile("bad", CENTRE_LFW_V1.sha256, tmp_path))
    assert info.value.code == "model_integrity"
    with pytest.raises(ModelIntegrityError) as info:
        load_centres(CentreFile("absent", CENTRE_LFW_V1.sha256, tmp_path))
    assert info.value.code == "model_missing"


def test_written_centre_file_round_trips_with_its_digest(tmp_path: Path) -> None:
    vectors = {"sface-flip": np.full(4, 0.25, np.float32)}
    digest = write_centres(tmp_path / "c.npz", vectors, {"blend": 0.9})
    loaded = load_centres(CentreFile("c", digest, tmp_path))
    np.testing.assert_array_equal(loaded["sface-flip"], vectors["sface-flip"])


def test_refitting_the_same_centre_gives_the_same_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pinned digest must follow the numbers only, not the time they were written."""
    vectors = {"sface-flip": np.full(4, 0.25, np.float32), "facenet-v2": np.ones(3, np.float32)}
    first = write_centres(tmp_path / "a.npz", vectors, {"blend": 1.0})
    monkeypatch.setattr(time, "time", lambda: 2_000_000_000.0)  # 2033: another zip date
    second = write_centres(tmp_path / "b.npz", dict(reversed(vectors.items())), {"blend": 1.0})
    assert first == second
    changed = write_centres(tmp_path / "c.npz", vectors, {"blend": 0.9})
    assert changed != first


def test_centring_moves_the_origin_then_normalises() -> None:
    vector = np.array([0.6, 0.8, 0.0], np.float32)
    centre = np.array([0.6, 0.0, 0.0], np.float32)
    np.testing.assert_allclose(centred(vector, centre), [0.0, 1.0, 0.0])
    assert not np.any(centred(centre, centre))


@given(
    arrays(np.float32, (5, 6), elements=st.floats(-1, 1, width=32)),
    arrays(np.float32, 6, elements=st.floats(-0.5, 0.5, width=32)),
)
def test_centred_rows_equal_centring_each_row_and_keep_missing_faces_zero(
    matrix: np.ndarray, centre: np.ndarray
) -> None:
    matrix[0] = 0.0  # a photo without a face
    out = centred_rows(matrix, centre)
    assert not np.any(out[0])
    for row, expected in zip(out[1:], matrix[1:], strict=True):
        if np.any(expected):
            np.testing.assert_allclose(row, centred(expected, centre), atol=1e-5)


@pytest.mark.models
def test_centred_member_is_its_base_vector_centred(meds_dir: Path, tmp_path: Path) -> None:
    path = sorted(meds_dir.glob("*.jpg"))[0]
    image = decode_image(path.read_bytes()).pixels
    face = YuNetDetector().predict(image)[0]
    member = EMBEDDERS["sface-flip-c1"]()
    assert isinstance(member, CentredEmbedder)
    direct = member.embed(image, face)
    from_base = member.derive(member.base.embed(image, face))
    np.testing.assert_allclose(direct, from_base, atol=1e-6)
    assert abs(float(np.linalg.norm(direct)) - 1) < 1e-5

    cache = TemplateCache(tmp_path / "cache")
    base = extract([path], [member.base], cache, workers=1)
    again = extract([path], [member], cache, workers=1)
    assert again.computed == 0  # derived from the cached base vector, no new embedding
    vector = again.vectors["sface-flip-c1"][0]
    base_vector = base.vectors["sface-flip"][0]
    assert vector is not None and base_vector is not None
    np.testing.assert_allclose(vector, member.derive(base_vector), atol=1e-6)
