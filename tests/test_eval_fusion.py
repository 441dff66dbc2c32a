"""Fusion weight search and 1:N outcome bookkeeping, on synthetic score matrices."""

from __future__ import annotations

import numpy as np
import pytest

from facelead.errors import InputError
from facelead.eval import fusion_search
from facelead.eval.identification import (
    MATE_ABSENT,
    NO_CANDIDATE,
    SearchScores,
    objective,
    outcomes,
    subset,
    summarise,
)


def test_simplex_grid_covers_the_simplex() -> None:
    grid = fusion_search.simplex_grid(3, 0.05)
    assert grid.shape == (231, 3)
    np.testing.assert_allclose(grid.sum(axis=1), 1.0)
    assert (grid >= 0).all()
    assert any((row == [1, 0, 0]).all() for row in grid)  # single models are grid points
    with pytest.raises(InputError):
        fusion_search.simplex_grid(3, 0.3)


def test_pick_takes_the_middle_of_a_flat_optimum() -> None:
    grid = fusion_search.simplex_grid(2, 0.25)  # (0,1), (.25,.75), ..., (1,0)
    assert fusion_search.pick([0.9, 0.95, 0.95, 0.95, 0.8], grid, maximise=True) == 2
    assert fusion_search.pick([3, 1, 2, 2, 2], grid, maximise=False) == 1


def test_pick_prefers_fewer_models_within_one_standard_error() -> None:
    grid = fusion_search.simplex_grid(2, 0.5)  # (0,1), (.5,.5), (1,0)
    values = [0.90, 0.952, 0.950]  # the pair beats model 0 alone by less than the error
    assert fusion_search.pick(values, grid, maximise=True, tolerance=0.005) == 2
    assert fusion_search.pick(values, grid, maximise=True, tolerance=0.001) == 1
    assert fusion_search.accuracy_se(0.99, 10_000) == pytest.approx(0.000995, rel=1e-3)


def _pairs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model 0 separates mated from non-mated pairs well, model 1 barely."""
    mated = np.tile(np.array([True, False]), n // 2)
    good = np.where(mated, 0.7, 0.1) + rng.normal(0, 0.08, n)
    poor = np.where(mated, 0.55, 0.45) + rng.normal(0, 0.2, n)
    fold = np.repeat(np.arange(10), n // 10)
    return np.stack([good, poor]), mated, fold


def test_verification_cv_prefers_the_clearly_better_model() -> None:
    scores, mated, fold = _pairs(np.random.default_rng(3), 2000)
    grid = fusion_search.simplex_grid(2, 0.05)
    cv = fusion_search.verification_cv(scores, mated, fold, grid)
    assert len(cv.fold_weights) == 10
    assert all(w[0] >= 0.7 for w in cv.fold_weights)
    poor_alone = fusion_search.verification_cv(scores[1:], mated, fold, grid[:1, :1])
    assert cv.mean_accuracy > poor_alone.mean_accuracy + 0.1
    assert cv.scores.shape == (2000,)


def _search(rng: np.random.Generator, mated: int, nonmated: int, subjects: int) -> SearchScores:
    """Model "good" puts each mate far above the rest; model "noise" is random."""
    mate = np.concatenate([rng.integers(0, subjects, mated), -np.ones(nonmated, np.int64)])
    good = rng.normal(0.0, 0.1, (mated + nonmated, subjects)).astype(np.float32)
    good[np.arange(mated), mate[:mated]] += 0.6
    noise = rng.normal(0.0, 0.1, good.shape).astype(np.float32)
    ok = np.ones(mate.size, dtype=bool)
    return SearchScores({"good": good, "noise": noise}, mate.astype(np.int64), ok)


def test_identification_cv_prefers_the_clearly_better_model() -> None:
    rng = np.random.default_rng(5)
    search = _search(rng, 400, 200, 150)
    grid = fusion_search.simplex_grid(2, 0.1)
    found = [outcomes(search, search.fused({"good": w[0], "noise": w[1]})) for w in grid]
    mated_fold = fusion_search.identity_folds([str(i % 37) for i in range(400)], 5, 1)
    nonmated_fold = fusion_search.identity_folds([f"n{i}" for i in range(200)], 5, 1)

    def cost(i: int, m: np.ndarray, n: np.ndarray) -> tuple[float, float]:
        return objective(subset(found[i], m, n))

    cv = fusion_search.identification_cv(cost, mated_fold, nonmated_fold, grid)
    assert len(cv.fold_weights) == 5
    assert all(w[0] >= 0.7 for w in cv.fold_weights)


def test_identity_folds_keep_a_person_in_one_fold() -> None:
    names = ["a", "b", "a", "c", "b", "d"]
    folds = fusion_search.identity_folds(names, 3, 0)
    assert folds[0] == folds[2] and folds[1] == folds[4]
    assert set(folds) <= {0, 1, 2}


def test_outcomes_score_failures_as_the_protocol_says() -> None:
    matrix = np.array(
        [
            [0.9, 0.2, 0.1],  # mated, mate col 0, rank 1
            [0.5, 0.6, 0.1],  # mated, mate col 0, rank 2
            [0.9, 0.9, 0.9],  # mated, probe had no face: a miss
            [0.8, 0.1, 0.1],  # mated, its gallery image failed to enrol: a miss
            [0.3, 0.7, 0.2],  # non-mated: top 0.7
            [0.9, 0.9, 0.9],  # non-mated, no face: no candidate
        ],
        dtype=np.float32,
    )
    mate = np.array([0, 0, 1, MATE_ABSENT, -1, -1], dtype=np.int64)
    ok = np.array([True, True, False, True, True, False])
    found = outcomes(SearchScores({"m": matrix}, mate, ok), matrix)
    assert found.ranks.tolist() == [1, 2, 0, 0]
    assert found.mate_scores[:2] == pytest.approx([0.9, 0.5])
    assert found.nonmated_top.tolist() == pytest.approx([0.7, NO_CANDIDATE])
    summary = summarise(found)
    assert summary.fnir_at_rank["1"] == pytest.approx(0.75)
    assert summary.fnir_at_rank["5"] == pytest.approx(0.5)
    assert summary.n_mated == 4 and summary.n_nonmated == 2


def test_mate_removed_searches_give_non_mated_scores() -> None:
    matrix = np.array([[0.9, 0.4, 0.2], [0.3, 0.8, 0.5]], dtype=np.float32)
    search = SearchScores({"m": matrix}, np.array([0, 1]), np.ones(2, bool), mate_removed=True)
    found = outcomes(search, matrix)
    assert found.ranks.tolist() == [1, 1]
    assert found.nonmated_top.tolist() == pytest.approx([0.4, 0.5])
