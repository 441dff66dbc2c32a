"""Accuracy metrics: hand-computed examples plus Hypothesis properties.

Every expected value below is worked out by hand in the comments, so a test fails if the
implementation drifts from the NIST definitions (score >= threshold = match/returned,
1-based ranks, pessimistic ties).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facelead.errors import InputError
from facelead.eval.metrics import (
    NOT_RETURNED,
    CalibrationTable,
    FloatArray,
    IntArray,
    best_accuracy_threshold,
    build_calibration,
    cmc,
    det_curve,
    estimated_fmr,
    fmr_fnmr,
    fmr_is_upper_bound,
    fnir_at_fpir,
    fnir_at_rank,
    fpir,
    kfold_verification,
    ranks_and_scores,
    tar_at_fmr,
    threshold_at_fmr,
    threshold_at_fpir,
    wilson_interval,
)


def above(x: float) -> float:
    """The next float above x: the exact threshold that admits everything > x."""
    return float(np.nextafter(x, math.inf))


# --------------------------------------------------------------------------- 1:N example

# 4 mated + 3 non-mated searches over a gallery of 5 subjects (columns 0..4).
MATRIX = np.array(
    [
        [0.90, 0.30, 0.20, 0.10, 0.05],  # S0 mate col 0: 0.90, nothing above -> rank 1
        [0.70, 0.60, 0.20, 0.10, 0.05],  # S1 mate col 1: 0.60, 0.70 above    -> rank 2
        [0.50, 0.50, 0.50, 0.10, 0.05],  # S2 mate col 2: 0.50 tied with two  -> rank 3
        [0.80, 0.75, 0.70, 0.40, 0.65],  # S3 mate col 3: 0.40, four above    -> rank 5
        [0.20, 0.10, 0.30, 0.15, 0.05],  # N0 non-mated: top 0.30
        [0.55, 0.10, 0.20, 0.10, 0.05],  # N1 non-mated: top 0.55
        [0.10, 0.45, 0.20, 0.35, 0.05],  # N2 non-mated: top 0.45
    ]
)
MATES = np.array([0, 1, 2, 3, -1, -1, -1])

Searches = tuple[IntArray, FloatArray, FloatArray]


@pytest.fixture
def searches() -> Searches:
    return ranks_and_scores(MATRIX, MATES)


def test_ranks_and_scores_hand_example(searches: Searches) -> None:
    ranks, scores, top = searches
    assert ranks.tolist() == [1, 2, 3, 5]
    assert scores.tolist() == [0.90, 0.60, 0.50, 0.40]
    assert top.tolist() == [0.30, 0.55, 0.45]


def test_ties_rank_pessimistically() -> None:
    # Mate (col 1) ties the impostor in col 0 at 0.7 -> the mate ranks 2nd, not 1st.
    ranks, _, _ = ranks_and_scores([[0.7, 0.7, 0.1]], [1])
    assert ranks.tolist() == [2]
    # All three tied -> rank 3 (below both impostors).
    ranks, _, _ = ranks_and_scores([[0.5, 0.5, 0.5]], [0])
    assert ranks.tolist() == [3]


def test_ranks_and_scores_rejects_bad_mate_index() -> None:
    with pytest.raises(InputError):
        ranks_and_scores(MATRIX, np.array([0, 1, 2, 5, -1, -1, -1]))  # column 5 absent
    with pytest.raises(InputError):
        ranks_and_scores(MATRIX, np.array([0, 1, 2, -2, -1, -1, -1]))
    with pytest.raises(InputError):
        ranks_and_scores(MATRIX, MATES[:-1])


def test_fnir_at_rank_hand_example(searches: Searches) -> None:
    ranks = searches[0]  # [1, 2, 3, 5]
    assert fnir_at_rank(ranks, 1) == pytest.approx(3 / 4)  # only S0 at rank 1
    assert fnir_at_rank(ranks, 2) == pytest.approx(2 / 4)
    assert fnir_at_rank(ranks, 3) == pytest.approx(1 / 4)
    assert fnir_at_rank(ranks, 4) == pytest.approx(1 / 4)  # S3 is at rank 5
    assert fnir_at_rank(ranks, 5) == 0.0


def test_not_returned_counts_as_miss_at_every_rank() -> None:
    # Top-2 candidate lists: S2 and S3 mates not returned.
    ranks = [1, 2, NOT_RETURNED, NOT_RETURNED]
    assert fnir_at_rank(ranks, 1) == pytest.approx(0.75)
    assert fnir_at_rank(ranks, 100) == pytest.approx(0.5)
    assert cmc(ranks, 3).tolist() == pytest.approx([0.25, 0.5, 0.5])


def test_cmc_hand_example(searches: Searches) -> None:
    # Ranks [1, 2, 3, 5]: cumulative hits 1, 2, 3, 3, 4 out of 4.
    assert cmc(searches[0], 5).tolist() == pytest.approx([0.25, 0.5, 0.75, 0.75, 1.0])


def test_fpir_hand_example(searches: Searches) -> None:
    top = searches[2]  # [0.30, 0.55, 0.45]
    assert fpir(top, 0.45) == pytest.approx(2 / 3)  # 0.55 and 0.45 (>=, inclusive)
    assert fpir(top, 0.50) == pytest.approx(1 / 3)  # 0.55
    assert fpir(top, 0.56) == 0.0
    assert fpir(top, 0.30) == 1.0


def test_threshold_at_fpir_hand_example(searches: Searches) -> None:
    top = searches[2]
    # 1/3 of 3 searches -> 1 allowed; descending [0.55, 0.45, 0.30] -> just above 0.45.
    assert threshold_at_fpir(top, 1 / 3) == above(0.45)
    assert threshold_at_fpir(top, 0.0) == above(0.55)
    assert threshold_at_fpir(top, 1.0) == -math.inf


def test_fnir_at_fpir_hand_example(searches: Searches) -> None:
    ranks, scores, top = searches
    # FPIR 1/3 -> T just above 0.45. Mates found with score >= T: 0.90, 0.60, 0.50;
    # S3 (0.40) misses -> FNIR 1/4 at any rank.
    fnir, threshold = fnir_at_fpir(ranks, scores, top, 1 / 3)
    assert threshold == above(0.45)
    assert fnir == pytest.approx(0.25)
    # Rank 1 only S0 counts -> 3/4; rank 2 adds S1 -> 2/4.
    assert fnir_at_fpir(ranks, scores, top, 1 / 3, rank=1)[0] == pytest.approx(0.75)
    assert fnir_at_fpir(ranks, scores, top, 1 / 3, rank=2)[0] == pytest.approx(0.5)
    # FPIR 0 -> T just above 0.55: only 0.90 and 0.60 survive -> 2/4.
    assert fnir_at_fpir(ranks, scores, top, 0.0)[0] == pytest.approx(0.5)


def test_fnir_at_fpir_ignores_scores_of_unreturned_mates(
    searches: Searches,
) -> None:
    top = searches[2]
    ranks = [1, 2, NOT_RETURNED, NOT_RETURNED]
    scores = [0.90, 0.60, math.nan, 0.99]  # 0.99 must not count: that mate is not listed
    assert fnir_at_fpir(ranks, scores, top, 1 / 3)[0] == pytest.approx(0.5)
    with pytest.raises(InputError):  # a returned mate with NaN score is an error
        fnir_at_fpir([1, 2], [0.9, math.nan], top, 1 / 3)


def test_det_curve_hand_example(searches: Searches) -> None:
    fpir_values, fnir_values, thresholds = det_curve(*searches, n_points=100)
    # Distinct scores 0.30 0.40 0.45 0.50 0.55 0.60 0.90, plus just above 0.90.
    assert thresholds.tolist() == [0.30, 0.40, 0.45, 0.50, 0.55, 0.60, 0.90, above(0.90)]
    assert fpir_values.tolist() == pytest.approx([1, 2 / 3, 2 / 3, 1 / 3, 1 / 3, 0, 0, 0])
    assert fnir_values.tolist() == pytest.approx([0, 0, 1 / 4, 1 / 4, 2 / 4, 2 / 4, 3 / 4, 1])
    # Subsampling keeps both ends.
    _, _, few = det_curve(*searches, n_points=3)
    assert few.tolist() == [0.30, 0.55, above(0.90)]


# --------------------------------------------------------------------------- 1:1


def test_fmr_fnmr_inclusive_threshold() -> None:
    genuine = [0.5, 0.7, 0.9, 0.3]
    impostor = [0.1, 0.5, 0.2]
    # At 0.5: impostor 0.5 matches (>=) -> FMR 1/3; genuine 0.3 fails -> FNMR 1/4.
    assert fmr_fnmr(genuine, impostor, 0.5) == pytest.approx((1 / 3, 1 / 4))


def test_threshold_at_fmr_is_exact_with_ties() -> None:
    impostor = [0.1, 0.2, 0.3, 0.3, 0.4]  # descending 0.4, 0.3, 0.3, 0.2, 0.1
    # FMR 0.2 -> 1 allowed -> T just above the 2nd highest (0.3): FMR exactly 1/5.
    t = threshold_at_fmr(impostor, 0.2)
    assert t == above(0.3)
    assert fmr_fnmr([1.0], impostor, t)[0] == pytest.approx(0.2)
    # One float lower (T = 0.3) admits both tied 0.3s: FMR 3/5 > 0.2.
    assert fmr_fnmr([1.0], impostor, 0.3)[0] == pytest.approx(0.6)
    # FMR 0.4 -> 2 allowed, but the tie makes 2 impossible: same T, achieved FMR 0.2.
    assert threshold_at_fmr(impostor, 0.4) == above(0.3)
    assert threshold_at_fmr(impostor, 0.0) == above(0.4)


def test_threshold_at_fmr_counts_1e3_of_3000_exactly() -> None:
    impostor = np.arange(3000) / 3000.0
    t = threshold_at_fmr(impostor, 1e-3)  # 3 allowed: just above the 4th highest
    assert t == above(2996 / 3000.0)
    assert fmr_fnmr([1.0], impostor, t)[0] == pytest.approx(1e-3)


def test_threshold_at_fmr_rejects_bad_target() -> None:
    with pytest.raises(InputError):
        threshold_at_fmr([0.1, 0.2], 1.5)
    with pytest.raises(InputError):
        threshold_at_fmr([0.1, 0.2], math.nan)
    with pytest.raises(InputError):
        threshold_at_fmr([], 0.1)


def test_tar_at_fmr() -> None:
    impostor = [0.1, 0.2, 0.3, 0.3, 0.4]
    genuine = [0.35, 0.5, 0.25, 0.3]
    # T just above 0.3 -> genuine 0.35 and 0.5 accepted -> TAR 2/4.
    tar, t = tar_at_fmr(genuine, impostor, 0.2)
    assert t == above(0.3)
    assert tar == pytest.approx(0.5)


def test_best_accuracy_threshold_separable() -> None:
    # Only the midpoint between 0.3 and 0.6 classifies all six correctly.
    assert best_accuracy_threshold([0.6, 0.7, 0.8], [0.1, 0.2, 0.3]) == pytest.approx(0.45)


def test_best_accuracy_threshold_with_known_error() -> None:
    # Distinct scores .1 .3 .4 .5 .7 .8 -> candidates and correct counts (of 6):
    # 0.1->3, 0.2->4, 0.35->5, 0.45->4, 0.6->5, 0.75->4, above 0.8->3.
    # The tie at 5 resolves to the lowest threshold, 0.35.
    assert best_accuracy_threshold([0.4, 0.7, 0.8], [0.1, 0.5, 0.3]) == pytest.approx(0.35)


def test_kfold_separable_toy_set() -> None:
    rng = np.random.default_rng(7)
    genuine = rng.uniform(0.6, 1.0, 30)
    impostor = rng.uniform(0.0, 0.4, 30)
    scores = np.concatenate([genuine, impostor])
    mated = np.repeat([True, False], 30)
    fold = np.concatenate([np.arange(30) % 10, np.arange(30) % 10])
    result = kfold_verification(scores, mated, fold)
    assert result.fold_accuracies == (1.0,) * 10
    assert result.mean_accuracy == 1.0
    assert result.std_accuracy == 0.0
    # 30 impostors: floor(0.03) = 0 may match -> T above the max impostor, TAR 1.
    assert result.impostors_above_threshold == 0
    assert result.tar_at_target_fmr == 1.0
    assert result.threshold_at_target_fmr == above(float(impostor.max()))
    assert (result.n_genuine, result.n_impostor) == (30, 30)


def test_kfold_with_known_error() -> None:
    # fold 0: gen 0.9 0.8   imp 0.1  0.2
    # fold 1: gen 0.85 0.75 imp 0.15 0.25
    # fold 2: gen 0.7 0.95  imp 0.05 0.72   <- a high impostor
    scores = [0.9, 0.8, 0.1, 0.2, 0.85, 0.75, 0.15, 0.25, 0.7, 0.95, 0.05, 0.72]
    mated = np.array([True, True, False, False] * 3)
    fold = np.repeat([0, 1, 2], 4)
    result = kfold_verification(scores, mated, fold)
    # Hold out 0: train gen .85 .75 .7 .95 / imp .15 .25 .05 .72. Best 7/8 at the
    #   midpoints 0.475 (0.25|0.7) and 0.735 (0.72|0.75); lowest = 0.475 -> fold 0: 4/4.
    # Hold out 1: train gen .9 .8 .7 .95 / imp .1 .2 .05 .72 -> 0.45 (7/8) -> fold 1: 4/4.
    # Hold out 2: train separable, midpoint 0.25|0.75 = 0.5 -> impostor 0.72 accepted: 3/4.
    assert result.fold_thresholds == pytest.approx((0.475, 0.45, 0.5))
    assert result.fold_accuracies == pytest.approx((1.0, 1.0, 0.75))
    assert result.mean_accuracy == pytest.approx(11 / 12)
    # Deviations 1/12, 1/12, -2/12 -> var = (6/144)/2 -> std = sqrt(1/48) = 0.1443...
    assert result.std_accuracy == pytest.approx(math.sqrt(1 / 48))
    assert result.standard_error == pytest.approx(math.sqrt(1 / 48) / math.sqrt(3))
    # All pairs: 6 impostors, 0 allowed -> T above 0.72 -> genuine 0.7 rejected: TAR 5/6.
    assert result.tar_at_target_fmr == pytest.approx(5 / 6)


def test_kfold_reports_how_few_impostors_tar_rests_on() -> None:
    scores = np.concatenate([np.linspace(0.5, 1, 300), np.linspace(0, 0.6, 3000)])
    mated = np.repeat([True, False], [300, 3000])
    fold = np.arange(3300) % 10
    assert kfold_verification(scores, mated, fold).impostors_above_threshold == 3


def test_kfold_rejects_single_fold_and_bad_labels() -> None:
    with pytest.raises(InputError):
        kfold_verification([0.9, 0.1], np.array([True, False]), [0, 0])
    with pytest.raises(InputError):
        kfold_verification([0.9, 0.1], np.array([1, 0]), [0, 1])  # not boolean


# --------------------------------------------------------------------------- calibration


@pytest.fixture
def uniform_table() -> CalibrationTable:
    # Impostors 0.000, 0.001, ..., 0.999: FMR(i/1000) = (1000 - i) / 1000.
    return build_calibration(np.arange(1000) / 1000.0, "model-a", points=50)


def test_calibration_is_monotone_and_exact_at_its_points(uniform_table: CalibrationTable) -> None:
    th, fmr = np.array(uniform_table.thresholds), np.array(uniform_table.fmr)
    assert (np.diff(th) > 0).all()
    assert (np.diff(fmr) < 0).all()
    assert (th[0], fmr[0]) == (0.0, 1.0)
    assert (th[-1], fmr[-1]) == (0.999, pytest.approx(1e-3))
    for t, f in zip(th, fmr, strict=True):
        assert f == pytest.approx((1000 - round(t * 1000)) / 1000)
        assert estimated_fmr(uniform_table, t) == pytest.approx(f)
    grid = np.linspace(-0.5, 1.5, 401)
    estimates = [estimated_fmr(uniform_table, s) for s in grid]
    assert all(b <= a for a, b in itertools.pairwise(estimates))


def test_calibration_interpolates_in_log_space(uniform_table: CalibrationTable) -> None:
    th, fmr = uniform_table.thresholds, uniform_table.fmr
    i = len(th) // 2
    mid = (th[i] + th[i + 1]) / 2
    # Halfway in score -> geometric (not arithmetic) mean of the two FMRs.
    assert estimated_fmr(uniform_table, mid) == pytest.approx(math.sqrt(fmr[i] * fmr[i + 1]))
    # And close to the true FMR: consecutive points are ~10^(3/49) = 1.15x apart.
    true = np.mean(np.arange(1000) / 1000.0 >= mid)
    assert estimated_fmr(uniform_table, mid) / true == pytest.approx(1.0, rel=0.1)


def test_calibration_bound_above_highest_impostor(uniform_table: CalibrationTable) -> None:
    assert not fmr_is_upper_bound(uniform_table, 0.999)
    assert fmr_is_upper_bound(uniform_table, 0.9995)
    assert estimated_fmr(uniform_table, 0.9995) == pytest.approx(1e-3)
    assert estimated_fmr(uniform_table, 5.0) == pytest.approx(1e-3)
    assert estimated_fmr(uniform_table, -5.0) == 1.0


def test_calibration_with_ties_never_records_zero_fmr() -> None:
    # 0.9 tied 3 times at the top: FMR at 0.9 is 3/6, the table's floor entry.
    table = build_calibration([0.1, 0.2, 0.3, 0.9, 0.9, 0.9], "m", points=10)
    assert table.thresholds[-1] == 0.9
    assert table.fmr[-1] == pytest.approx(0.5)
    assert estimated_fmr(table, 0.95) == pytest.approx(1 / 6)  # bound 1/n, below 3/6


def test_calibration_json_round_trip_and_validation(uniform_table: CalibrationTable) -> None:
    assert CalibrationTable.from_json(uniform_table.to_json()) == uniform_table
    with pytest.raises(InputError):
        CalibrationTable.from_json('{"schema": "other/9"}')
    with pytest.raises(InputError):
        CalibrationTable.from_json("not json")
    bad = uniform_table.to_json().replace('"model-a"', '""')
    with pytest.raises(InputError):
        CalibrationTable.from_json(bad)
    with pytest.raises(InputError):  # thresholds not ascending
        CalibrationTable("m", 4, (0.5, 0.4), (1.0, 0.5))
    with pytest.raises(InputError):  # FMR below the measurable floor 1/4
        CalibrationTable("m", 4, (0.4, 0.5), (1.0, 0.1))


# --------------------------------------------------------------------------- Wilson


def test_wilson_known_values() -> None:
    # Standard tabulated 95% Wilson intervals (z = 1.96).
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27754), abs=1e-5)
    assert wilson_interval(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    assert wilson_interval(10, 10) == pytest.approx((0.72246, 1.0), abs=1e-5)
    assert wilson_interval(1, 100) == pytest.approx((0.00177, 0.05449), abs=1e-5)


def test_wilson_rejects_impossible_counts() -> None:
    for successes, n in [(1, 0), (-1, 10), (11, 10)]:
        with pytest.raises(InputError):
            wilson_interval(successes, n)


# --------------------------------------------------------------------------- properties

rank_lists = st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=60)
score_lists = st.lists(
    st.floats(min_value=-1.0, max_value=1.0, allow_nan=False), min_size=1, max_size=60
)


@given(rank_lists, st.integers(1, 40), st.integers(1, 40))
def test_fnir_at_rank_non_increasing(ranks: list[int], r1: int, r2: int) -> None:
    lo, hi = sorted((r1, r2))
    assert fnir_at_rank(ranks, hi) <= fnir_at_rank(ranks, lo)


@given(score_lists, st.floats(-2, 2), st.floats(-2, 2))
def test_fpir_non_increasing_in_threshold(top: list[float], t1: float, t2: float) -> None:
    lo, hi = sorted((t1, t2))
    assert fpir(top, hi) <= fpir(top, lo)


@given(rank_lists, st.integers(1, 40))
def test_cmc_non_decreasing_and_matches_fnir(ranks: list[int], max_rank: int) -> None:
    curve = cmc(ranks, max_rank)
    assert curve.shape == (max_rank,)
    assert (np.diff(curve) >= 0).all()
    assert curve[-1] == pytest.approx(1.0 - fnir_at_rank(ranks, max_rank))
    assert curve[0] == pytest.approx(1.0 - fnir_at_rank(ranks, 1))


@given(score_lists, st.floats(0.0, 1.0))
def test_threshold_at_fmr_is_the_smallest_admissible(impostor: list[float], target: float) -> None:
    t = threshold_at_fmr(impostor, target)
    achieved = fmr_fnmr([0.0], impostor, t)[0]
    assert achieved <= target + 1e-12
    if t != -math.inf:  # one float lower must break the target
        assert fmr_fnmr([0.0], impostor, float(np.nextafter(t, -math.inf)))[0] > target


@settings(max_examples=60)
@given(
    st.integers(1, 6).flatmap(
        lambda g: st.tuples(
            st.lists(st.lists(st.integers(0, 3), min_size=g, max_size=g), min_size=1, max_size=8),
            st.lists(st.integers(-1, g - 1), min_size=8, max_size=8),
        )
    )
)
def test_ranks_match_brute_force(case: tuple[list[list[int]], list[int]]) -> None:
    rows, mate_pool = case
    mates = mate_pool[: len(rows)]
    ranks, scores, top = ranks_and_scores(np.array(rows, dtype=float), mates)
    expected_ranks, expected_top = [], []
    for row, mate in zip(rows, mates, strict=True):
        if mate < 0:
            expected_top.append(max(row))
        else:  # 1 + number of OTHER subjects scoring >= the mate (pessimistic ties)
            expected_ranks.append(1 + sum(s >= row[mate] for j, s in enumerate(row) if j != mate))
    assert ranks.tolist() == expected_ranks
    assert top.tolist() == expected_top
    assert len(scores) == len(expected_ranks)


@given(score_lists, st.lists(st.floats(-2, 2), min_size=2, max_size=20))
def test_estimated_fmr_non_increasing(impostor: list[float], probes: list[float]) -> None:
    table = build_calibration(impostor, "m", points=20)
    values = [estimated_fmr(table, s) for s in sorted(probes)]
    assert all(b <= a * (1 + 1e-12) for a, b in itertools.pairwise(values))
    assert all(table.fmr_floor <= v <= 1.0 for v in values)


@given(rank_lists, score_lists)
def test_det_curve_monotone(ranks: list[int], top: list[float]) -> None:
    scores = [(r % 7) / 7 for r in ranks]
    fpir_values, fnir_values, thresholds = det_curve(ranks, scores, top, n_points=10)
    assert (np.diff(thresholds) > 0).all()
    assert (np.diff(fpir_values) <= 0).all()
    assert (np.diff(fnir_values) >= 0).all()
    assert fpir_values[-1] == 0.0


def test_estimated_fmr_is_exact_at_the_floor_point() -> None:
    # 10 ** log10(1/15) != 1/15 in binary; the estimate at a measured point must be exact.
    table = build_calibration([0.0] * 14 + [1.0], "m", points=20)
    assert estimated_fmr(table, 1.0) == 1 / 15
    assert estimated_fmr(table, 1.0) >= table.fmr_floor
