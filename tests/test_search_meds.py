"""1:N search over real MEDS booking photos with the real fused model.

Searches go through the policy-enforced path: an investigator submits, a
supervisor assigns an examiner, and only that examiner sees the candidates.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from facelead import DISCLAIMER
from facelead.config import Settings
from facelead.domain.access import SYSTEM, Actor, Role
from facelead.domain.search import CandidateList, ProbeProvenance, SearchRequest
from facelead.errors import InputError, PolicyRefusal
from facelead.services.cases import open_case
from facelead.services.gallery import gallery_stats
from facelead.services.search import assign_examiner, submit_search, view_candidates
from tests.conftest import MedsGallery

DEFAULT_MODEL = Settings().model_id

pytestmark = pytest.mark.models
CASE = "MEDS-2024-001"
CERTIFIED = dt.date.today() + dt.timedelta(days=90)
EXAMINER = Actor(None, "meds-examiner", frozenset({Role.EXAMINER}), "MEDS", CERTIFIED)
SUPERVISOR = Actor(None, "meds-supervisor", frozenset({Role.SUPERVISOR}), "MEDS", CERTIFIED)
PROVENANCE = ProbeProvenance("digital-photo", "later booking photo, held out", "records bureau")


def investigator(name: str) -> Actor:
    """One investigator per test keeps each under the daily search limit."""
    return Actor(None, name, frozenset({Role.INVESTIGATOR}), "MEDS", CERTIFIED)


@pytest.fixture(scope="module")
def case(meds_gallery: MedsGallery) -> str:
    open_case(meds_gallery.services, investigator("meds-lead"), CASE, "robbery")
    return CASE


def search(meds: MedsGallery, who: Actor, data: bytes, top_k: int | None = None) -> CandidateList:
    """Submit as ``who``, assign the examiner, and return what the examiner sees."""
    request = SearchRequest(
        "criminal-investigation",
        "Robbery suspect photographed at a later booking",
        PROVENANCE,
        top_k=top_k,
    )
    receipt = submit_search(meds.services, who, CASE, data, request)
    assign_examiner(meds.services, SUPERVISOR, receipt.search_id, EXAMINER.username)
    return view_candidates(meds.services, EXAMINER, receipt.search_id)


def test_gallery_enrolled(meds_gallery: MedsGallery) -> None:
    assert meds_gallery.enrolled.get("enrolled", 0) >= 60
    assert len(meds_gallery.probes) >= 15


def test_mate_is_rank_one_for_every_frontal_probe(meds_gallery: MedsGallery, case: str) -> None:
    who = investigator("meds-rank1")
    searched = 0
    for path, subject in meds_gallery.probes:
        try:
            result = search(meds_gallery, who, path.read_bytes(), top_k=20)
        except PolicyRefusal as exc:
            # The quality gate may refuse a probe; it must say why, never search it.
            assert exc.code == "low_quality_probe" and exc.details["failures"]
            continue
        searched += 1
        assert result.candidates[0].subject_id == subject, (path.name, result.candidates[:3])
    assert searched >= len(meds_gallery.probes) - 2


def test_candidate_list_shape(meds_gallery: MedsGallery, case: str) -> None:
    path, _ = meds_gallery.probes[0]
    result = search(meds_gallery, investigator("meds-shape"), path.read_bytes(), top_k=7)
    assert len(result.candidates) == 7
    assert [c.rank for c in result.candidates] == list(range(1, 8))
    scores = [c.score for c in result.candidates]
    assert scores == sorted(scores, reverse=True)
    assert len({c.subject_id for c in result.candidates}) == 7  # one row per subject
    assert result.model_id == DEFAULT_MODEL
    fmrs = [c.estimated_fmr for c in result.candidates]
    assert all(f is not None and 0 < f <= 1 for f in fmrs), fmrs  # calibrated default
    known = [f for f in fmrs if f is not None]  # all of them, as just asserted
    assert known == sorted(known), "a higher score never has a higher estimated FMR"
    assert result.disclaimer == DISCLAIMER
    assert not hasattr(result, "match")


def test_default_k_is_20_and_bounded(meds_gallery: MedsGallery, case: str) -> None:
    path, _ = meds_gallery.probes[1]
    data = path.read_bytes()
    who = investigator("meds-k")
    result = search(meds_gallery, who, data)
    assert len(result.candidates) == min(20, result.gallery_size)
    for bad in (0, 51, -3):
        with pytest.raises(InputError) as info:
            search(meds_gallery, who, data, top_k=bad)
        assert info.value.code == "invalid_top_k"


def test_probe_is_never_enrolled(meds_gallery: MedsGallery, case: str) -> None:
    path, _ = meds_gallery.probes[2]
    data = path.read_bytes()
    before = gallery_stats(meds_gallery.services, SYSTEM)
    search(meds_gallery, investigator("meds-privacy"), data)
    assert gallery_stats(meds_gallery.services, SYSTEM) == before
    sha = hashlib.sha256(data).hexdigest()
    assert not meds_gallery.services.images.exists(sha)
    assert meds_gallery.services.probes.exists(sha)  # kept apart, with its provenance
