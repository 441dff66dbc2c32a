"""Scale index: int8 scan with exact float16 re-rank, threads, deletion bitmap, FAISS mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from facelead.index import FlatIndex, flat_scan, load_or_rebuild, scan_setup
from facelead.index.scan_setup import Hit

MODEL = "fusion-v1"


def _clustered(rng: np.random.Generator, n: int, d: int, subjects: int) -> tuple[Any, Any]:
    """Unit vectors around per-subject centres sharing a common component (like face templates)."""
    common = rng.standard_normal(d).astype(np.float32)
    common /= np.linalg.norm(common)
    centres = rng.standard_normal((subjects, d)).astype(np.float32) * 0.6 / np.sqrt(d)
    sids = rng.integers(0, subjects, n)
    v = common + centres[sids] + rng.standard_normal((n, d)).astype(np.float32) * 0.3 / np.sqrt(d)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v.astype(np.float32), sids.astype(np.int64)


def _reference(
    vectors: NDArray[np.float32],
    pids: NDArray[np.int64],
    sids: NDArray[np.int64],
    q: NDArray[np.float32],
    k: int,
    deleted: NDArray[np.bool_] | None = None,
) -> list[tuple[int, int]]:
    """Brute force over live rows: best (score desc, photo id asc) photo per subject.

    Scores are float64 inner products of the stored float16 templates with the query,
    the index's definition of an exact score."""
    scores = vectors.astype(np.float16).astype(np.float64) @ q.astype(np.float64)
    best: dict[int, tuple[float, int]] = {}
    for i, (score, pid, sid) in enumerate(
        zip(scores.tolist(), pids.tolist(), sids.tolist(), strict=True)
    ):
        if deleted is not None and deleted[i]:
            continue
        cur = best.get(sid)
        if cur is None or (-score, pid) < (-cur[0], cur[1]):
            best[sid] = (score, pid)
    ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[1][1]))
    return [(pid, sid) for sid, (_, pid) in ranked[:k]]


def _pairs(hits: list[Hit]) -> list[tuple[int, int]]:
    return [(h.photo_id, h.subject_id) for h in hits]


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 400),
    subjects=st.integers(1, 40),
    d=st.sampled_from([4, 16, 64]),
    k=st.integers(1, 30),
    seed=st.integers(0, 2**32 - 1),
    delete_fraction=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    threads=st.integers(1, 3),
)
def test_property_exact_with_bitmap_matches_brute_force(
    n: int, subjects: int, d: int, k: int, seed: int, delete_fraction: float, threads: int
) -> None:
    rng = np.random.default_rng(seed)
    vectors, sids = _clustered(rng, n, d, subjects)
    pids = rng.permutation(n).astype(np.int64) * 7 + 3
    deleted = rng.random(n) < delete_fraction
    index = FlatIndex(MODEL, 1, vectors, pids, sids, deleted=deleted, threads=threads)
    q = vectors[rng.integers(0, n)] if rng.random() < 0.5 else _clustered(rng, 1, d, 1)[0][0]
    want = _reference(vectors, pids, sids, q, k, deleted)
    with mock.patch.object(flat_scan, "SMALL_SCAN", 0):  # several threads, several pieces
        assert _pairs(index.search(q, k)) == want
    assert _pairs(index.search_reference(q, k)) == want


def test_int8_bound_covers_every_row() -> None:
    rng = np.random.default_rng(5)
    vectors, sids = _clustered(rng, 3000, 768, 200)
    index = FlatIndex(MODEL, 1, vectors, np.arange(3000), sids)
    for q in vectors[:5]:
        exact = index.scores(q)
        approx = index.approx_scores(q)
        assert np.all(np.abs(approx - exact) <= index.error_bounds(q))


def test_threads_give_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flat_scan, "SCAN_ROWS", 64)
    monkeypatch.setattr(flat_scan, "SMALL_SCAN", 0)  # threads and pieces even when small
    rng = np.random.default_rng(9)
    vectors, sids = _clustered(rng, 5000, 32, 700)
    index = FlatIndex(MODEL, 1, vectors, np.arange(1, 5001), sids)
    for q in vectors[:10]:
        one = index.search(q, 50, threads=1)
        assert index.search(q, 50, threads=2) == one
        assert index.search(q, 50, threads=3) == one
        np.testing.assert_array_equal(index.approx_scores(q, 1), index.approx_scores(q, 2))
        assert _pairs(one) == _reference(vectors, np.arange(1, 5001), sids, q, 50)


def test_deletion_bitmap_is_honoured_and_persisted(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    vectors, sids = _clustered(rng, 600, 16, 60)
    pids = np.arange(1, 601, dtype=np.int64)
    tids = pids + 1000
    index = FlatIndex(MODEL, 4, vectors, pids, sids, template_ids=tids)
    q = vectors[0]
    top = index.search(q, 5)[0]
    assert index.mark_deleted(subject_ids=[top.subject_id]) == int((sids == top.subject_id).sum())
    assert all(h.subject_id != top.subject_id for h in index.search(q, 60))
    assert top.photo_id not in index.photo_ids
    assert index.mark_deleted(template_ids=[1001, 1002]) == 2 - int(
        top.subject_id in sids[:2]
    ) * int((sids[:2] == top.subject_id).sum())
    index.save(tmp_path)
    loaded = FlatIndex.load(tmp_path, MODEL)
    assert isinstance(loaded.vectors, np.memmap) and isinstance(loaded.codes, np.memmap)
    np.testing.assert_array_equal(loaded.deleted, index.deleted)
    assert len(loaded) == len(index) < 600
    for q in vectors[:20]:
        want = _reference(vectors, pids, sids, q, 10, index.deleted)
        assert _pairs(loaded.search(q, 10)) == want
        assert _pairs(loaded.compacted().search(q, 10)) == want
    # Flipping a bit back re-admits the row; only the bitmap file and meta change.
    loaded.mark_deleted(template_ids=[1001], deleted=False)
    loaded.save_bitmap(tmp_path, generation=5)
    again = FlatIndex.load(tmp_path, MODEL)
    assert again.generation == 5 and not again.deleted[0]
    assert len([p for p in tmp_path.iterdir() if "deleted-" in p.name]) == 1


def test_everything_deleted_returns_nothing() -> None:
    rng = np.random.default_rng(1)
    vectors, sids = _clustered(rng, 50, 8, 5)
    index = FlatIndex(MODEL, 1, vectors, np.arange(50), sids, deleted=np.ones(50, bool))
    assert len(index) == 0 and index.search(vectors[0], 3) == []


Row = tuple[int, int, int, NDArray[np.float32]]


def _rows(vectors: NDArray[np.float32], sids: NDArray[np.int64]) -> list[Row]:
    return [(i + 100, i + 1, int(s), vectors[i]) for i, s in enumerate(sids)]


def test_manager_compacts_removals_and_rebuilds_additions(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    vectors, sids = _clustered(rng, 40, 8, 6)
    rows = _rows(vectors, sids)
    load_or_rebuild(tmp_path, MODEL, 1, rows)
    sealed = int(sids[0])
    kept = [r for r in rows if r[2] != sealed]
    index = load_or_rebuild(tmp_path, MODEL, 2, kept)
    assert index.generation == 2 and len(index) == len(kept) == index.rows
    assert sealed not in set(FlatIndex.load(tmp_path, MODEL).all_subject_ids.tolist())  # no residue
    extra = (999, 999, 77, vectors[0])
    grown = load_or_rebuild(tmp_path, MODEL, 3, [*kept, extra])
    assert grown.generation == 3 and 999 in grown.photo_ids


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 600),
    subjects=st.integers(1, 60),
    k=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
    heap_cap=st.sampled_from([1, 3, 16, 16_384]),
    candidates=st.sampled_from([1, 7, 65_536]),
    threads=st.integers(1, 3),
    skew=st.booleans(),
)
def test_property_fast_path_and_fallbacks_match_brute_force(
    n: int,
    subjects: int,
    k: int,
    seed: int,
    heap_cap: int,
    candidates: int,
    threads: int,
    skew: bool,
) -> None:
    """Tiny heaps (too few subjects in them), overflowing candidate buffers and subjects
    owning most photos all force the general shortlist; the answer never changes."""
    rng = np.random.default_rng(seed)
    vectors, sids = _clustered(rng, n, 16, subjects)
    if skew:  # one subject owns about half of the photos
        sids[rng.random(n) < 0.5] = 0
    pids = rng.permutation(n).astype(np.int64) + 1
    deleted = rng.random(n) < 0.1
    index = FlatIndex(MODEL, 1, vectors, pids, sids, deleted=deleted, threads=threads)
    q = _clustered(rng, 1, 16, 1)[0][0]
    with (
        mock.patch.object(flat_scan, "MAX_HEAP", heap_cap),
        mock.patch.object(scan_setup, "CANDIDATES", candidates),
        mock.patch.object(flat_scan, "SCAN_ROWS", 8),
        mock.patch.object(flat_scan, "SMALL_SCAN", 0 if threads > 1 else 32_768),
    ):
        got = _pairs(index.search(q, k))
    assert got == _reference(vectors, pids, sids, q, k, deleted)


def test_fast_path_is_taken_and_small_on_face_like_data() -> None:
    """On clustered data the kernel's heaps prove the shortlist: no fallback, and far
    fewer rows re-scored than stored."""
    rng = np.random.default_rng(21)
    vectors, sids = _clustered(rng, 20_000, 256, 6000)
    index = FlatIndex(MODEL, 1, vectors, np.arange(1, 20_001), sids)
    for q in vectors[:5]:
        qq = index._query(q)
        approx, parts = index._scan(qq, 50, 2)
        rows = index._fast_shortlist(parts, approx, qq, 50)
        assert rows is not None and 50 <= rows.size < 2000
        assert _pairs(index.search(q, 50)) == _reference(vectors, np.arange(1, 20_001), sids, q, 50)


def test_int8_bound_covers_every_row_at_256_dimensions() -> None:
    rng = np.random.default_rng(8)
    vectors, sids = _clustered(rng, 4000, 256, 300)
    index = FlatIndex(MODEL, 1, vectors, np.arange(4000), sids)
    for q in [*vectors[:3], _clustered(rng, 1, 256, 1)[0][0] * 3.0]:
        exact = index.scores(q)
        approx = index.approx_scores(q)
        assert np.all(np.abs(approx - exact) <= index.error_bounds(q))


def test_approximate_mode_full_rerank_is_exact_and_recall_is_measured() -> None:
    ivf = pytest.importorskip("facelead.index.ivf")
    pytest.importorskip("faiss")
    rng = np.random.default_rng(3)
    vectors, sids = _clustered(rng, 3000, 32, 300)
    index = FlatIndex(MODEL, 1, vectors, np.arange(1, 3001), sids)
    index.mark_deleted(photo_ids=[1, 2, 3])
    queries = vectors[10:25]
    exact = [index.search(q, 20) for q in queries]
    for factory, shard_min in ((None, 65_536), (None, 0), ("IVF16,SQ8", 0)):
        with mock.patch.object(ivf, "SHARD_MIN_ROWS", shard_min):  # 0: one shard per thread
            ann = ivf.ApproxIndex.build(index, factory, sample=3000, threads=2)
        assert len(ann.parts) == (2 if factory is None and shard_min == 0 else 1)
        full = [ann.search(q, 20, nprobe=16, rerank=3000) for q in queries]
        assert full == exact  # every row re-ranked exactly: the exact answer
        partial = [ann.search(q, 20, nprobe=1, rerank=40) for q in queries]
        assert 0.0 < ivf.recall_at_k(exact, partial, 20) <= 1.0
        assert all(h.photo_id not in (1, 2, 3) for hits in partial for h in hits)
        cal = ann.calibrate(queries, 20, target=0.99, exact=exact)
        assert cal.recall >= 0.99 and (ann.nprobe, ann.rerank) == (cal.nprobe, cal.rerank)
        assert cal.tried[-1][2] == cal.recall
