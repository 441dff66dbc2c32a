"""Exact per-subject search over float16 templates, and its consistency manager."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from facelead.index import FlatIndex, Hit, load_or_rebuild, scan_setup
from facelead.index import flat as flat_module

MODEL = "fusion-v1"


def _unit(rng: np.random.Generator, n: int, d: int) -> NDArray[np.float32]:
    v = rng.standard_normal((n, d)).astype(np.float32)
    norms: NDArray[np.float32] = np.linalg.norm(v, axis=1, keepdims=True)
    return (v / norms).astype(np.float32)


def _reference(
    vectors: NDArray[np.float32],
    pids: NDArray[np.int64],
    sids: NDArray[np.int64],
    q: NDArray[np.float32],
    k: int,
) -> list[tuple[int, int]]:
    """Brute force: best (score desc, photo id asc) photo per subject, subjects ranked alike.

    An exact score is the float64 inner product of the stored float16 template and the query."""
    scores = vectors.astype(np.float16).astype(np.float64) @ q.astype(np.float64)
    best: dict[int, tuple[float, int]] = {}
    for score, pid, sid in zip(scores.tolist(), pids.tolist(), sids.tolist(), strict=True):
        cur = best.get(sid)
        if cur is None or (-score, pid) < (-cur[0], cur[1]):
            best[sid] = (score, pid)
    ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[1][1]))
    return [(pid, sid) for sid, (_, pid) in ranked[:k]]


def _index(vectors: NDArray[np.float32], sids: list[int], generation: int = 1) -> FlatIndex:
    pids = np.arange(1, len(sids) + 1, dtype=np.int64)
    return FlatIndex(MODEL, generation, vectors.astype(np.float16), pids, np.array(sids))


def test_one_row_per_subject_with_best_photo() -> None:
    q = np.array([1.0, 0.0], dtype=np.float32)
    vectors = np.array([[0.5, 0.0], [0.9, 0.0], [0.7, 0.0], [0.1, 0.0]], dtype=np.float32)
    index = _index(vectors, [10, 10, 20, 20])
    hits = index.search(q, 10)
    assert [(h.photo_id, h.subject_id) for h in hits] == [(2, 10), (3, 20)]
    assert hits[0].score == pytest.approx(0.9, abs=1e-3)
    assert all(isinstance(h, Hit) for h in hits)


def test_k_bounds_and_ordering() -> None:
    rng = np.random.default_rng(0)
    index = _index(_unit(rng, 50, 16), list(range(50)))
    q = _unit(rng, 1, 16)[0]
    hits = index.search(q, 5)
    assert len(hits) == 5
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert len(index.search(q, 500)) == 50
    with pytest.raises(ValueError):
        index.search(q, 0)
    with pytest.raises(ValueError):
        index.search(np.zeros(3, dtype=np.float32), 1)


def test_ties_broken_by_lower_photo_id() -> None:
    q = np.array([1.0, 0.0], dtype=np.float32)
    vectors = np.array([[0.5, 0.0]] * 4, dtype=np.float32)
    pids = np.array([40, 30, 20, 10], dtype=np.int64)
    index = FlatIndex(MODEL, 1, vectors.astype(np.float16), pids, np.array([1, 1, 2, 2]))
    hits = index.search(q, 2)
    assert [(h.photo_id, h.subject_id) for h in hits] == [(10, 2), (30, 1)]
    assert index.search(q, 1) == [hits[0]]


def test_empty_index() -> None:
    index = FlatIndex.from_rows(MODEL, 0, iter([]))
    assert len(index) == 0
    assert index.search(np.ones(4, dtype=np.float32), 3) == []


def test_float16_ranking_matches_float32_when_scores_are_separated() -> None:
    rng = np.random.default_rng(7)
    d = 128
    q = _unit(rng, 1, d)[0]
    # Scores spread evenly far beyond float16 rounding error (~1e-3).
    targets = np.linspace(-0.9, 0.9, 40)
    noise = _unit(rng, 40, d)
    noise -= (noise @ q)[:, None] * q
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    vectors = (targets[:, None] * q + np.sqrt(1 - targets[:, None] ** 2) * noise).astype(np.float32)
    perm = rng.permutation(40)
    vectors = vectors[perm]
    index = _index(vectors, list(range(40)))
    hits = index.search(q, 40)
    exact = np.argsort(-(vectors @ q), kind="stable")
    assert [h.subject_id for h in hits] == exact.tolist()
    np.testing.assert_allclose([h.score for h in hits], (vectors @ q)[exact], atol=2e-3)


def test_blocked_scoring_and_candidate_prefilter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flat_module, "BLOCK_ROWS", 7)
    monkeypatch.setattr(scan_setup, "BLOCK_ROWS", 7)  # the quantiser's blocks too
    rng = np.random.default_rng(3)
    n, d = 20_000, 8
    vectors = _unit(rng, n, d)
    sids = rng.integers(0, 300, n)
    pids = rng.permutation(n).astype(np.int64) + 1
    index = FlatIndex(MODEL, 1, vectors.astype(np.float16), pids, sids)
    q = _unit(rng, 1, d)[0]
    assert index.scores(q).shape == (n,)
    for k in (1, 10, 299, 300):
        got = [(h.photo_id, h.subject_id) for h in index.search(q, k)]
        assert got == _reference(vectors, pids, sids, q, k)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 60),
    n_subjects=st.integers(1, 12),
    k=st.integers(1, 15),
    seed=st.integers(0, 2**32 - 1),
    coarse=st.booleans(),
)
def test_property_matches_brute_force_grouping(
    n: int, n_subjects: int, k: int, seed: int, coarse: bool
) -> None:
    rng = np.random.default_rng(seed)
    d = 4
    # Coarse vectors create many exact ties, exercising the tie-break rule.
    vectors = (rng.integers(-2, 3, (n, d)) / 4).astype(np.float32) if coarse else _unit(rng, n, d)
    sids = rng.integers(0, n_subjects, n).astype(np.int64)
    pids = rng.permutation(n).astype(np.int64) * 3 + 5
    q = (rng.integers(-2, 3, d) / 4).astype(np.float32) if coarse else _unit(rng, 1, d)[0]
    index = FlatIndex(MODEL, 1, vectors.astype(np.float16), pids, sids)
    got = [(h.photo_id, h.subject_id) for h in index.search(q, k)]
    assert got == _reference(vectors, pids, sids, q, k)


def test_save_load_roundtrip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    index = _index(_unit(rng, 30, 16), [i % 7 for i in range(30)], generation=5)
    index.save(tmp_path)
    loaded = FlatIndex.load(tmp_path, MODEL)
    assert (loaded.model_id, loaded.generation, loaded.dim, len(loaded)) == (MODEL, 5, 16, 30)
    np.testing.assert_array_equal(loaded.vectors, index.vectors)
    np.testing.assert_array_equal(loaded.photo_ids, index.photo_ids)
    np.testing.assert_array_equal(loaded.subject_ids, index.subject_ids)
    q = _unit(rng, 1, 16)[0]
    assert loaded.search(q, 5) == index.search(q, 5)
    # A second save replaces the first; old array files are cleaned up.
    index.save(tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 3
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []
    with pytest.raises(FileNotFoundError):
        FlatIndex.load(tmp_path, "other-model")
    with pytest.raises(ValueError):
        FlatIndex.load(tmp_path, "../escape")


def _rows(
    vectors: NDArray[np.float32], sids: list[int]
) -> list[tuple[int, int, int, NDArray[np.float32]]]:
    return [(i + 100, i + 1, sid, vectors[i]) for i, sid in enumerate(sids)]


def test_manager_loads_current_and_rebuilds_stale(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    vectors = _unit(rng, 6, 8)
    sids = [1, 1, 2, 2, 3, 3]
    built = load_or_rebuild(tmp_path, MODEL, 3, _rows(vectors, sids))
    assert (built.generation, len(built)) == (3, 6)

    def exploding() -> Iterator[tuple[int, int, int, NDArray[np.float32]]]:
        raise AssertionError("a current index must not be rebuilt")
        yield  # a generator: lazy until iterated

    loaded = load_or_rebuild(tmp_path, MODEL, 3, exploding())
    assert loaded.generation == 3 and len(loaded) == 6

    # Subject 2 deleted (or sealed) in the database: generation moved on.
    rows = [r for r in _rows(vectors, sids) if r[2] != 2]
    rebuilt = load_or_rebuild(tmp_path, MODEL, 4, rows)
    assert rebuilt.generation == 4 and len(rebuilt) == 4
    for q in vectors:
        assert all(h.subject_id != 2 for h in rebuilt.search(q, 3))
    assert FlatIndex.load(tmp_path, MODEL).generation == 4


def test_manager_rebuilds_corrupt_index(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    vectors = _unit(rng, 3, 8)
    load_or_rebuild(tmp_path, MODEL, 1, _rows(vectors, [1, 2, 3]))
    (tmp_path / f"{MODEL}.meta.json").write_text("{not json")
    index = load_or_rebuild(tmp_path, MODEL, 1, _rows(vectors, [1, 2, 3]))
    assert len(index) == 3
    assert FlatIndex.load(tmp_path, MODEL).generation == 1


def _rebuild_in_process(args: tuple[str, int]) -> tuple[int, int]:
    """Child process: catch up with the same database state as its siblings."""
    directory, generation = args
    rng = np.random.default_rng(6)
    rows = _rows(_unit(rng, 40, 8), [i % 9 for i in range(40)])
    index = load_or_rebuild(Path(directory), MODEL, generation, rows)
    return index.generation, len(index)


def test_manager_processes_catch_up_once_and_share_the_files(tmp_path: Path) -> None:
    """Workers racing to catch up never corrupt or delete each other's files: the lock
    serialises writers and a late one opens what the first one saved."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(3) as pool:
        results = pool.map(_rebuild_in_process, [(str(tmp_path), 7)] * 6)
    assert results == [(7, 40)] * 6
    assert len(list(tmp_path.glob("*.vectors.npy"))) == 1
    assert len(list(tmp_path.glob("*.deleted-*.bin"))) == 1
    assert FlatIndex.load(tmp_path, MODEL).generation == 7


def test_refresher_records_each_generation(tmp_path: Path) -> None:
    from facelead.index.manager import Refresher

    rng = np.random.default_rng(12)
    states = [_index(_unit(rng, 5, 4), [1, 2, 3, 4, 5], generation=g) for g in (1, 1, 2)]
    calls: list[int] = []

    def refresh() -> FlatIndex:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("database hiccup")  # logged; the thread carries on
        return states[min(len(calls), len(states)) - 1]

    refresher = Refresher(refresh, tmp_path, interval=0.01).start()
    try:
        for _ in range(500):
            status = list((tmp_path / "workers").glob("*.json"))
            if status and '"generation": 2' in status[0].read_text() and len(calls) > 4:
                break
            refresher.thread.join(0.01)
    finally:
        refresher.stop()
    [path] = (tmp_path / "workers").glob("*.json")
    assert '"live": 5' in path.read_text() and '"generation": 2' in path.read_text()
