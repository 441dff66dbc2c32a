"""1:N search over real MEDS booking photos with the real fused model."""

from __future__ import annotations

import hashlib

import pytest

from facelead import DISCLAIMER
from facelead.domain.access import SYSTEM
from facelead.errors import FaceError, InputError
from facelead.services.gallery import gallery_stats
from facelead.services.search import search_probe
from tests.conftest import MedsGallery

pytestmark = pytest.mark.models


def test_gallery_enrolled(meds_gallery: MedsGallery) -> None:
    assert meds_gallery.enrolled.get("enrolled", 0) >= 60
    assert len(meds_gallery.probes) >= 15


def test_mate_is_rank_one_for_every_frontal_probe(meds_gallery: MedsGallery) -> None:
    searched = 0
    for path, subject in meds_gallery.probes:
        try:
            result = search_probe(meds_gallery.services, path.read_bytes(), top_k=20)
        except FaceError as exc:
            # The quality gate may refuse a probe; it must say why, never search it.
            assert exc.code == "low_quality_probe" and exc.details["failures"]
            continue
        searched += 1
        assert result.candidates[0].subject_id == subject, (path.name, result.candidates[:3])
    assert searched >= len(meds_gallery.probes) - 2


def test_candidate_list_shape(meds_gallery: MedsGallery) -> None:
    path, _ = meds_gallery.probes[0]
    result = search_probe(meds_gallery.services, path.read_bytes(), top_k=7)
    assert len(result.candidates) == 7
    assert [c.rank for c in result.candidates] == list(range(1, 8))
    scores = [c.score for c in result.candidates]
    assert scores == sorted(scores, reverse=True)
    assert len({c.subject_id for c in result.candidates}) == 7  # one row per subject
    assert result.model_id == "fusion-v1"
    assert result.disclaimer == DISCLAIMER
    assert not hasattr(result, "match")


def test_default_k_is_20_and_bounded(meds_gallery: MedsGallery) -> None:
    path, _ = meds_gallery.probes[1]
    data = path.read_bytes()
    result = search_probe(meds_gallery.services, data)
    assert len(result.candidates) == min(20, result.gallery_size)
    for bad in (0, 51, -3):
        with pytest.raises(InputError) as info:
            search_probe(meds_gallery.services, data, top_k=bad)
        assert info.value.code == "invalid_top_k"


def test_probe_is_never_enrolled(meds_gallery: MedsGallery) -> None:
    path, _ = meds_gallery.probes[2]
    data = path.read_bytes()
    before = gallery_stats(meds_gallery.services, SYSTEM)
    search_probe(meds_gallery.services, data)
    assert gallery_stats(meds_gallery.services, SYSTEM) == before
    assert not meds_gallery.services.images.exists(hashlib.sha256(data).hexdigest())
