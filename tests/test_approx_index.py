"""The approximate index (index/ivf.py): compressed first pass, exact re-rank.

Speed is measured in bench/search.py only; these tests pin what must hold at any
speed: the re-rank scores obey the flat index's error bound (so its provable
shortlist stays valid), a full re-rank is the exact answer whatever the factory
(with a learned rotation or reduction in front of the codes), deleted rows are
never returned, and calibration stops at the first setting that meets the target.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import numpy as np
import pytest

from facelead.index import FlatIndex

ivf = pytest.importorskip("facelead.index.ivf")
faiss = pytest.importorskip("faiss")

MODEL = "fusion-v1"


def _clustered(rng: np.random.Generator, n: int, d: int, subjects: int) -> tuple[Any, Any]:
    """Unit vectors around per-subject centres on a common component, with most of the
    spread in a few directions (like face templates: a reduction has something to keep)."""
    common = rng.standard_normal(d).astype(np.float32)
    common /= np.linalg.norm(common)
    spread = np.exp(-np.arange(d) / (d / 6)).astype(np.float32)  # anisotropic centres
    centres = rng.standard_normal((subjects, d)).astype(np.float32) * spread * 2.0 / np.sqrt(d)
    sids = rng.integers(0, subjects, n)
    noise = rng.standard_normal((n, d)).astype(np.float32) * 0.3 / np.sqrt(d)
    v = common + centres[sids] + noise
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v.astype(np.float32), sids.astype(np.int64)


def _index(seed: int, n: int, d: int, subjects: int) -> tuple[FlatIndex, Any]:
    vectors, sids = _clustered(np.random.default_rng(seed), n, d, subjects)
    return FlatIndex(MODEL, 1, vectors, np.arange(1, n + 1), sids), vectors


def test_gathered_int8_scores_equal_the_scan_and_obey_its_error_bound() -> None:
    index, vectors = _index(1, 3000, 96, 400)
    rng = np.random.default_rng(2)
    rows = np.sort(rng.choice(3000, size=700, replace=False)).astype(np.intp)
    for query in (vectors[5], rng.standard_normal(96).astype(np.float32) * 4.0):
        q = index._query(query)
        got = np.empty(rows.size, dtype=np.float32)
        ivf._gather_dots(np.asarray(index.codes), np.asarray(index.scales), rows, q, got)
        scan = index.approx_scores(q)[rows]
        np.testing.assert_allclose(got, scan, rtol=1e-5, atol=1e-6)
        exact = index.scores(q)[rows]
        assert np.all(np.abs(got - exact) <= index.error_bounds(q, rows))


@pytest.mark.parametrize("dim", [640, 512, 256, 128, 96, 33, 8])
def test_default_factory_scans_few_bytes_and_builds_at_any_dimension(dim: int) -> None:
    """The point of the default: a template's code is a few dozen bytes whatever the
    model's dimension, so a 10M-row pass stays a few hundred megabytes."""
    factory = ivf.default_factory(dim)
    rng = np.random.default_rng(dim)
    train = rng.standard_normal((2000, dim)).astype(np.float32)
    index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    index.train(train)
    index.add(train[:100])
    assert index.ntotal == 100
    assert index.sa_code_size() <= 32
    if dim >= 128:
        assert factory.startswith(("PCA", "OPQ"))  # reduced before it is quantised


@pytest.mark.parametrize("factory", [None, "PCAR16,PQ8x4fs", "OPQ8_16,PQ8x4fs"])
def test_full_rerank_after_a_reduction_is_the_exact_answer(factory: str | None) -> None:
    index, vectors = _index(3, 4000, 64, 500)
    index.mark_deleted(photo_ids=[1, 2, 3, 50])
    queries = vectors[40:52]
    exact = [index.search(q, 20) for q in queries]
    ann = ivf.ApproxIndex.build(index, factory, sample=4000, threads=2)
    assert [ann.search(q, 20, rerank=4000) for q in queries] == exact
    for q in queries:  # a short re-rank: approximate list, exact scores, no deleted row
        hits = ann.search(q, 20, rerank=60)
        scores = index.scores(q)  # photo id i is row i - 1
        assert hits and all(h.score == scores[h.photo_id - 1] for h in hits)
        assert all(h.photo_id not in (1, 2, 3, 50) for h in hits)


def test_calibration_stops_at_the_first_rerank_that_meets_the_target() -> None:
    index, vectors = _index(4, 3000, 48, 600)
    queries = vectors[100:130]
    exact = [index.search(q, 20) for q in queries]
    ann = ivf.ApproxIndex.build(index, "PCAR4,PQ2x4fs", sample=3000, threads=1)  # coarse
    cal = ann.calibrate(queries, 20, target=0.99, exact=exact)
    reranks = [t[1] for t in cal.tried]
    assert reranks == sorted(reranks) and len(reranks) >= 2  # the coarse code needs more
    assert all(t[2] < 0.99 for t in cal.tried[:-1])
    assert cal.recall >= 0.99 and ann.rerank == cal.rerank == reranks[-1]
    assert ivf.recall_at_k(exact, [ann.search(q, 20) for q in queries], 20) == cal.recall


def test_settings_end_with_every_row_when_the_largest_rerank_exceeds_the_gallery() -> None:
    index, _ = _index(5, 2500, 16, 300)
    ann = ivf.ApproxIndex.build(index, "PQ8x4fs", sample=2500, threads=1)
    settings = ann._settings()
    assert settings[-1] == (1, 2500)
    assert [r for _, r in settings] == sorted({r for _, r in settings})


def test_nprobe_reaches_inverted_lists_behind_a_transform() -> None:
    """``PCAR..,IVF..`` wraps the lists in a transform: nprobe must still reach them
    (it once did not, and every query then searched one list)."""
    index, vectors = _index(6, 4000, 64, 500)
    queries = vectors[200:210]
    exact = [index.search(q, 10) for q in queries]
    ann = ivf.ApproxIndex.build(index, "PCAR16,IVF8,PQ8x4fs", sample=4000, threads=2)
    assert ann.nlist == 8
    q = index._query(queries[0])
    assert ann.candidate_rows(q, 1, 4000).size < ann.candidate_rows(q, 8, 4000).size == 4000
    assert [ann.search(q, 10, nprobe=8, rerank=4000) for q in queries] == exact
    assert [n for n, _ in ann._settings()] == [1, 2, 4, 8]


def test_shards_of_an_index_that_faiss_cannot_clone_are_copied_and_exact() -> None:
    """One shard per thread needs copies of the trained index; ``clone_index`` refuses
    RaBitQ fast scan, so those are copied through serialisation."""
    index, vectors = _index(7, 3000, 32, 400)
    queries = vectors[:8]
    exact = [index.search(q, 10) for q in queries]
    with pytest.raises(RuntimeError):
        faiss.clone_index(faiss.index_factory(32, "RaBitQfs", faiss.METRIC_INNER_PRODUCT))
    with mock.patch.object(ivf, "SHARD_MIN_ROWS", 0):
        ann = ivf.ApproxIndex.build(index, "PCAR16,RaBitQfs", sample=3000, threads=2)
    assert len(ann.parts) == 2
    assert [ann.search(q, 10, rerank=3000) for q in queries] == exact
