"""Accuracy metrics for 1:1 verification and 1:N identification, NIST FRTE style.

Definitions follow ISO/IEC 19795-1 (FMR, FNMR), NIST FRTE 1:1 and NIST IR 8271
"FRVT Part 2: Identification" (FNIR, FPIR, CMC) so that FaceLead's own numbers can be
compared with the published NIST ones. Conventions, used everywhere in this module:

* A higher score means "more similar". A 1:1 comparison *matches*, and a 1:N candidate is
  *returned above threshold*, when ``score >= threshold`` (NIST uses the same inequality).
* Ranks are 1-based. ``NOT_RETURNED`` (0) is the rank of a mate that is not on the
  candidate list at all (a top-L list that misses the mate).
* Rates are empirical fractions of the searches or comparisons given; no smoothing. Small
  samples deserve a confidence interval: see :func:`wilson_interval`.

Everything is pure numpy: no I/O, no globals, deterministic. Bad input raises
:class:`facelead.errors.InputError` rather than returning NaN, because a silent NaN in an
accuracy report is worse than a refusal.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from facelead.errors import InputError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

NOT_RETURNED: Final[int] = 0
"""Mate rank meaning "the mate is not on the candidate list" (real ranks start at 1)."""

DEFAULT_TAR_FMR: Final[float] = 1e-3
"""The FMR at which :func:`kfold_verification` reports TAR (the usual NIST FRTE 1:1 point)."""

CALIBRATION_SCHEMA: Final[str] = "facelead.calibration/1"

# Tolerance when turning a target rate into a whole number of allowed errors, so that
# e.g. 1e-3 * 3000 (= 3.0000000000000004 in binary) allows exactly 3 false matches.
_COUNT_EPS: Final[float] = 1e-9


# --------------------------------------------------------------------------- validation


def _scores(values: ArrayLike, name: str, *, allow_empty: bool = False) -> FloatArray:
    """A 1-D float64 copy of *values*, refusing NaN/inf: a score must be a measurement."""
    arr = np.array(values, dtype=np.float64)
    if arr.ndim != 1:
        raise InputError(f"{name} must be one-dimensional", field=name)
    if arr.size == 0 and not allow_empty:
        raise InputError(f"{name} must not be empty", field=name)
    if not np.isfinite(arr).all():
        raise InputError(f"{name} must contain only finite scores", field=name)
    return arr


def _integers(values: ArrayLike, name: str) -> IntArray:
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size == 0:
        raise InputError(f"{name} must be a non-empty one-dimensional array", field=name)
    if not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{name} must hold integers", field=name)
    return arr.astype(np.int64)


def _ranks(values: ArrayLike) -> IntArray:
    ranks = _integers(values, "mate_ranks")
    if (ranks < NOT_RETURNED).any():
        raise InputError("mate_ranks must be 1-based ranks or NOT_RETURNED (0)")
    return ranks


def _rank_limit(rank: int | None, name: str = "rank") -> int | None:
    if rank is not None and (isinstance(rank, bool) or int(rank) != rank or rank < 1):
        raise InputError(f"{name} must be a whole number >= 1", field=name)
    return None if rank is None else int(rank)


def _rate(value: float, name: str) -> float:
    rate = float(value)
    if not 0.0 <= rate <= 1.0:  # also refuses NaN
        raise InputError(f"{name} must lie in [0, 1]", field=name)
    return rate


def _threshold(value: float) -> float:
    threshold = float(value)
    if math.isnan(threshold):
        raise InputError("threshold must not be NaN", field="threshold")
    return threshold


def _mated(mate_ranks: ArrayLike, mate_scores: ArrayLike) -> tuple[IntArray, FloatArray]:
    """Validated ranks and scores; scores of unreturned mates become -inf (never found)."""
    ranks = _ranks(mate_ranks)
    scores = np.array(mate_scores, dtype=np.float64)
    if scores.shape != ranks.shape:
        raise InputError("mate_scores and mate_ranks must have the same shape")
    returned = ranks != NOT_RETURNED
    if not np.isfinite(scores[returned]).all():
        raise InputError("a returned mate must have a finite score", field="mate_scores")
    return ranks, np.where(returned, scores, -np.inf)


def _within(ranks: IntArray, rank: int | None) -> BoolArray:
    """Mates on the candidate list at rank <= *rank* (any rank when *rank* is None)."""
    returned: BoolArray = ranks != NOT_RETURNED
    if rank is None:
        return returned
    within: BoolArray = returned & (ranks <= rank)
    return within


def _threshold_at_rate(negatives: FloatArray, target: float) -> float:
    """Smallest threshold T with fraction(negatives >= T) <= target, exactly.

    With n negatives, at most k = floor(target * n) of them may reach T. Sorting them in
    descending order s_1 >= s_2 >= ..., the admissible thresholds are exactly T > s_(k+1),
    so the smallest representable one is the next float above s_(k+1). Ties: when
    s_k == s_(k+1), no threshold can admit only some of the tied scores, so the achieved
    rate is below the target (the conservative side). When k >= n every threshold
    qualifies and the answer is -inf.
    """
    allowed = math.floor(target * negatives.size + _COUNT_EPS)
    if allowed >= negatives.size:
        return -math.inf
    descending = np.sort(negatives)[::-1]
    return float(np.nextafter(descending[allowed], math.inf))


# --------------------------------------------------------------------------- 1:1


def fmr_fnmr(genuine: ArrayLike, impostor: ArrayLike, threshold: float) -> tuple[float, float]:
    """(FMR, FNMR) at *threshold*, ISO/IEC 19795-1.

    FMR is the fraction of impostor (non-mated) comparisons with score >= threshold; FNMR
    the fraction of genuine (mated) comparisons with score < threshold.
    """
    gen = _scores(genuine, "genuine")
    imp = _scores(impostor, "impostor")
    t = _threshold(threshold)
    return float(np.mean(imp >= t)), float(np.mean(gen < t))


def threshold_at_fmr(impostor: ArrayLike, target_fmr: float) -> float:
    """The smallest threshold whose empirical FMR is <= *target_fmr*.

    NIST FRTE reports FNMR "at FMR = x" at exactly this threshold. It is exact, computed
    from the sorted impostor scores (next float above the (k+1)-th highest, k =
    floor(target * n)); with tied impostor scores the achieved FMR may be below the
    target. Returns -inf when the target allows every impostor to match (target >= 1).
    """
    return _threshold_at_rate(_scores(impostor, "impostor"), _rate(target_fmr, "target_fmr"))


def tar_at_fmr(genuine: ArrayLike, impostor: ArrayLike, target_fmr: float) -> tuple[float, float]:
    """(TAR, threshold): true accept rate 1 - FNMR at :func:`threshold_at_fmr`.

    The threshold is returned too so that a report can state which operating point the
    TAR belongs to.
    """
    threshold = threshold_at_fmr(impostor, target_fmr)
    gen = _scores(genuine, "genuine")
    return float(np.mean(gen >= threshold)), threshold


def best_accuracy_threshold(genuine: ArrayLike, impostor: ArrayLike) -> float:
    """Threshold maximising accuracy (TP + TN) / N, as in the LFW protocol's training folds.

    Candidates are the lowest score (accept all), the midpoints between consecutive
    distinct scores, and the next float above the highest score (reject all); every
    distinct split of the sorted scores is therefore tried once. Equal accuracies resolve
    to the lowest threshold, so the result is deterministic.
    """
    gen = np.sort(_scores(genuine, "genuine"))
    imp = np.sort(_scores(impostor, "impostor"))
    distinct = np.unique(np.concatenate([gen, imp]))
    lower, upper = distinct[:-1], distinct[1:]
    mids = lower / 2 + upper / 2
    mids = np.where(mids > lower, mids, upper)  # adjacent floats: the midpoint rounds down
    candidates = np.concatenate(
        [distinct[:1], mids, [np.nextafter(distinct[-1], math.inf)]]
    ).astype(np.float64)
    true_accepts = gen.size - np.searchsorted(gen, candidates, side="left")
    true_rejects = np.searchsorted(imp, candidates, side="left")
    return float(candidates[int(np.argmax(true_accepts + true_rejects))])


@dataclass(frozen=True)
class VerificationResult:
    """k-fold 1:1 verification accuracy (LFW protocol) plus TAR at a fixed FMR.

    ``std_accuracy`` is the sample standard deviation over folds (ddof = 1) and
    ``standard_error`` is std / sqrt(folds), as the LFW protocol asks to report.
    ``impostors_above_threshold`` is floor(FMR * impostor pairs): the number of impostor
    scores the TAR@FMR threshold rests on. With the 3,000 impostor pairs of LFW it is 3,
    so TAR@FMR=1e-3 there is a very noisy estimate and must be reported as such.
    """

    fold_accuracies: tuple[float, ...]
    fold_thresholds: tuple[float, ...]
    mean_accuracy: float
    std_accuracy: float
    standard_error: float
    target_fmr: float
    tar_at_target_fmr: float
    threshold_at_target_fmr: float
    impostors_above_threshold: int
    n_genuine: int
    n_impostor: int


def _kfold_inputs(
    scores: ArrayLike, is_mated: ArrayLike, fold: ArrayLike
) -> tuple[FloatArray, BoolArray, IntArray]:
    values = _scores(scores, "scores")
    mated = np.asarray(is_mated)
    folds = _integers(fold, "fold")
    if mated.dtype != np.bool_:
        raise InputError("is_mated must be a boolean array", field="is_mated")
    if mated.shape != values.shape or folds.shape != values.shape:
        raise InputError("scores, is_mated and fold must have the same shape")
    if np.unique(folds).size < 2:
        raise InputError("k-fold evaluation needs at least two folds", field="fold")
    return values, mated, folds


def kfold_verification(
    scores: ArrayLike,
    is_mated: ArrayLike,
    fold: ArrayLike,
    target_fmr: float = DEFAULT_TAR_FMR,
) -> VerificationResult:
    """LFW-style k-fold accuracy: threshold learnt on k-1 folds, scored on the held-out one.

    Learning the threshold on the other folds keeps each fold's accuracy honest (no
    threshold tuned on its own test pairs). TAR at *target_fmr* is computed once over all
    pairs, since it needs no training; see :class:`VerificationResult` for its caveat.
    """
    values, mated, folds = _kfold_inputs(scores, is_mated, fold)
    accuracies: list[float] = []
    thresholds: list[float] = []
    for label in np.unique(folds):
        test = folds == label
        train_gen, train_imp = values[~test & mated], values[~test & ~mated]
        if train_gen.size == 0 or train_imp.size == 0:
            raise InputError("every training split needs mated and non-mated pairs")
        threshold = best_accuracy_threshold(train_gen, train_imp)
        accuracies.append(float(np.mean((values[test] >= threshold) == mated[test])))
        thresholds.append(threshold)
    tar, tar_threshold = tar_at_fmr(values[mated], values[~mated], target_fmr)
    std = float(np.std(accuracies, ddof=1))
    n_impostor = int(np.count_nonzero(~mated))
    return VerificationResult(
        fold_accuracies=tuple(accuracies),
        fold_thresholds=tuple(thresholds),
        mean_accuracy=float(np.mean(accuracies)),
        std_accuracy=std,
        standard_error=std / math.sqrt(len(accuracies)),
        target_fmr=target_fmr,
        tar_at_target_fmr=tar,
        threshold_at_target_fmr=tar_threshold,
        impostors_above_threshold=math.floor(target_fmr * n_impostor + _COUNT_EPS),
        n_genuine=int(np.count_nonzero(mated)),
        n_impostor=n_impostor,
    )


# --------------------------------------------------------------------------- 1:N


def ranks_and_scores(
    score_matrix: ArrayLike, mate_index: ArrayLike
) -> tuple[IntArray, FloatArray, FloatArray]:
    """(mate_ranks, mate_scores, nonmated_top_scores) from a full search x subject matrix.

    Row i is one search; column j one gallery subject (its best photo's score, as on a
    FaceLead candidate list). ``mate_index[i]`` is the mate's column, or -1 for a
    non-mated search. Ties rank pessimistically: a mate tied with an impostor ranks below
    it (rank = number of subjects scoring >= the mate), so ties never flatter accuracy.
    A full matrix returns every mate; build NOT_RETURNED ranks yourself for top-L lists.
    The outputs keep the order of the mated and of the non-mated rows respectively.
    """
    matrix = np.array(score_matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise InputError("score_matrix must be a non-empty 2-D array (searches x subjects)")
    if not np.isfinite(matrix).all():
        raise InputError("score_matrix must contain only finite scores")
    mates = _integers(mate_index, "mate_index")
    if mates.shape != (matrix.shape[0],):
        raise InputError("mate_index needs one entry per search (row)")
    if ((mates < -1) | (mates >= matrix.shape[1])).any():
        raise InputError("mate_index must be a subject column or -1 (non-mated)")
    rows = np.flatnonzero(mates >= 0)
    mate_scores = matrix[rows, mates[rows]]
    mate_ranks = np.sum(matrix[rows] >= mate_scores[:, None], axis=1).astype(np.int64)
    nonmated_top = matrix[mates < 0].max(axis=1, initial=-np.inf)
    return mate_ranks, mate_scores.astype(np.float64), nonmated_top.astype(np.float64)


def fnir_at_rank(mate_ranks: ArrayLike, rank: int) -> float:
    """FNIR(N, R, T=0) of NIST IR 8271: fraction of mated searches whose mate is not
    within the top *rank* candidates (unreturned mates count as misses). Equals
    1 - identification rate at rank R, so FNIR at rank 1 is the "rank-1 miss rate".
    """
    limit = _rank_limit(rank)
    return float(1.0 - np.mean(_within(_ranks(mate_ranks), limit)))


def fpir(nonmated_top_scores: ArrayLike, threshold: float) -> float:
    """FPIR(N, T) of NIST IR 8271: fraction of non-mated searches returning one or more
    candidates with score >= T, i.e. whose rank-1 score is >= T. It does not depend on
    rank: any candidate above threshold is a false lead for an examiner to review.
    """
    top = _scores(nonmated_top_scores, "nonmated_top_scores")
    return float(np.mean(top >= _threshold(threshold)))


def threshold_at_fpir(nonmated_top_scores: ArrayLike, target_fpir: float) -> float:
    """Smallest threshold with FPIR <= *target_fpir*, exact; ties and -inf as in
    :func:`threshold_at_fmr` (the same computation on the non-mated rank-1 scores).
    """
    top = _scores(nonmated_top_scores, "nonmated_top_scores")
    return _threshold_at_rate(top, _rate(target_fpir, "target_fpir"))


def fnir_at_fpir(
    mate_ranks: ArrayLike,
    mate_scores: ArrayLike,
    nonmated_top_scores: ArrayLike,
    target_fpir: float,
    rank: int | None = None,
) -> tuple[float, float]:
    """(FNIR, threshold): NIST IR 8271 FNIR(N, R, T) at the T that gives FPIR = target.

    A mated search is a miss when its mate is not returned at rank <= R, or is returned
    with score < T. ``rank=None`` means any rank on the candidate list (NIST's R = L, the
    list length), the usual investigative setting; ``rank=1`` gives the stricter rank-1
    figure. Scores of NOT_RETURNED mates are ignored (may be NaN).
    """
    ranks, scores = _mated(mate_ranks, mate_scores)
    threshold = threshold_at_fpir(nonmated_top_scores, target_fpir)
    found = _within(ranks, _rank_limit(rank)) & (scores >= threshold)
    return float(1.0 - np.mean(found)), threshold


def cmc(mate_ranks: ArrayLike, max_rank: int) -> FloatArray:
    """Cumulative match characteristic: identification rate at ranks 1..max_rank.

    Element r-1 is the fraction of mated searches whose mate is at rank <= r, i.e.
    1 - FNIR(N, r, 0); it is non-decreasing and never reaches 1 while mates go unreturned.
    """
    ranks = _ranks(mate_ranks)
    limit = _rank_limit(max_rank, "max_rank")
    assert limit is not None  # _rank_limit only returns None for None
    counts = np.bincount(ranks[_within(ranks, limit)], minlength=limit + 1)[1:]
    return (np.cumsum(counts) / ranks.size).astype(np.float64)


def det_curve(
    mate_ranks: ArrayLike,
    mate_scores: ArrayLike,
    nonmated_top_scores: ArrayLike,
    n_points: int = 100,
    rank: int | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(fpir, fnir, thresholds) for an identification DET plot (NIST IR 8271 figures).

    Thresholds are at most *n_points* of the observed scores (evenly spaced in rank
    order, ascending) plus the next float above the highest score, so the curve reaches
    FPIR = 0. FPIR is non-increasing and FNIR non-decreasing along the arrays.
    """
    if isinstance(n_points, bool) or int(n_points) != n_points or n_points < 2:
        raise InputError("n_points must be a whole number >= 2", field="n_points")
    ranks, scores = _mated(mate_ranks, mate_scores)
    top = np.sort(_scores(nonmated_top_scores, "nonmated_top_scores"))
    hits = np.sort(scores[_within(ranks, _rank_limit(rank))])
    candidates = np.unique(np.concatenate([hits, top]))
    candidates = np.append(candidates, np.nextafter(candidates[-1], math.inf))
    if candidates.size > n_points:
        picks = np.round(np.linspace(0, candidates.size - 1, int(n_points))).astype(np.int64)
        candidates = candidates[np.unique(picks)]
    false_positives = top.size - np.searchsorted(top, candidates, side="left")
    true_hits = hits.size - np.searchsorted(hits, candidates, side="left")
    fpir_values = (false_positives / top.size).astype(np.float64)
    fnir_values = (1.0 - true_hits / ranks.size).astype(np.float64)
    return fpir_values, fnir_values, candidates.astype(np.float64)


# --------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class CalibrationTable:
    """Score -> measured FMR for one model, so examiners see "FMR ~ 1e-4", not a raw score.

    ``thresholds`` are observed impostor scores, strictly ascending; ``fmr[i]`` is the
    empirical FMR at ``thresholds[i]`` (fraction of impostors scoring >= it), strictly
    descending and never below ``1 / n_impostors``, the smallest measurable rate.
    """

    model_id: str
    n_impostors: int
    thresholds: tuple[float, ...]
    fmr: tuple[float, ...]

    def __post_init__(self) -> None:
        th, fmr = np.asarray(self.thresholds, float), np.asarray(self.fmr, float)
        if not self.model_id or self.n_impostors < 1:
            raise InputError("a calibration table needs a model_id and impostors")
        if th.ndim != 1 or th.size == 0 or th.shape != fmr.shape:
            raise InputError("thresholds and fmr must be equal-length, non-empty lists")
        if not np.isfinite(th).all() or (np.diff(th) <= 0).any():
            raise InputError("calibration thresholds must be finite and strictly ascending")
        if (np.diff(fmr) >= 0).any() or fmr[0] > 1.0 or fmr[-1] < self.fmr_floor:
            raise InputError("calibration FMRs must descend strictly within [1/n, 1]")

    @property
    def fmr_floor(self) -> float:
        """1 / n_impostors: below this no FMR can be measured, only bounded."""
        return 1.0 / self.n_impostors

    def to_json(self) -> str:
        """Versioned JSON (floats round-trip exactly through Python's repr)."""
        return json.dumps(
            {
                "schema": CALIBRATION_SCHEMA,
                "model_id": self.model_id,
                "n_impostors": self.n_impostors,
                "thresholds": list(self.thresholds),
                "fmr": list(self.fmr),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> CalibrationTable:
        """Parse and re-validate a table written by :meth:`to_json`."""
        try:
            data: Any = json.loads(text)
            if data["schema"] != CALIBRATION_SCHEMA:
                raise InputError(f"unknown calibration schema {data['schema']!r}")
            return cls(
                model_id=str(data["model_id"]),
                n_impostors=int(data["n_impostors"]),
                thresholds=tuple(float(x) for x in data["thresholds"]),
                fmr=tuple(float(x) for x in data["fmr"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"malformed calibration table: {exc}") from exc


def build_calibration(
    impostor_scores: ArrayLike, model_id: str, points: int = 50
) -> CalibrationTable:
    """Sample the empirical FMR curve at log-spaced FMRs from 1/n up to 1.

    For each target FMR the table records the lowest observed impostor score at which the
    measured FMR is <= target, and that measured FMR (not the target: with ties the two
    differ). The first entry is the lowest impostor score (FMR 1), the last the highest
    (FMR = its tie count / n). Log spacing gives equal resolution per decade, which is
    what matters for the 1e-2..1e-6 operating points NIST reports.
    """
    if isinstance(points, bool) or int(points) != points or points < 2:
        raise InputError("points must be a whole number >= 2", field="points")
    impostors = np.sort(_scores(impostor_scores, "impostor_scores"))
    n = impostors.size
    values = np.unique(impostors)
    fmr_at = (n - np.searchsorted(impostors, values, side="left")) / n
    targets = np.logspace(math.log10(1.0 / n), 0.0, int(points))
    # fmr_at descends, so -fmr_at ascends: first index with fmr_at <= target.
    first = np.searchsorted(-fmr_at, -targets, side="left")
    picks = np.unique(np.concatenate([[0], np.minimum(first, values.size - 1), [values.size - 1]]))
    return CalibrationTable(
        model_id=model_id,
        n_impostors=n,
        thresholds=tuple(float(v) for v in values[picks]),
        fmr=tuple(float(f) for f in fmr_at[picks]),
    )


def estimated_fmr(table: CalibrationTable, score: float) -> float:
    """Estimated FMR of a comparison scoring *score*: what a candidate's score means.

    Between table points the FMR is interpolated linearly in score and in log10(FMR)
    (FMR curves are roughly exponential in score). At or below the lowest threshold it is
    ``table.fmr[0]`` (1 for a built table). Above the highest impostor score no impostor
    was observed, so the measured FMR is 0; this returns ``1 / n_impostors`` instead, an
    UPPER BOUND, not a measurement (see :func:`fmr_is_upper_bound`). Reports must print
    it as "< 1/n", never as an estimate.
    """
    s = _threshold(score)
    if fmr_is_upper_bound(table, s):
        return table.fmr_floor
    thresholds = np.asarray(table.thresholds, dtype=np.float64)
    fmr = np.asarray(table.fmr, dtype=np.float64)
    i = int(np.searchsorted(thresholds, s, side="right")) - 1
    if i < 0 or thresholds[i] == s:  # below the table, or exactly on a measured point
        return float(fmr[max(i, 0)])
    estimate = float(10.0 ** np.interp(s, thresholds, np.log10(fmr)))
    # 10 ** log10(x) can miss x by an ulp: keep the estimate inside its bracketing points.
    return min(max(estimate, float(fmr[i + 1])), float(fmr[i]))


def fmr_is_upper_bound(table: CalibrationTable, score: float) -> bool:
    """True when :func:`estimated_fmr` for *score* is only the bound 1 / n_impostors."""
    return _threshold(score) > table.thresholds[-1]


# --------------------------------------------------------------------------- intervals


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial rate (Wilson 1927; Brown, Cai & DasGupta 2001).

    Used for per-group FMR/FNMR/FNIR in demographic reports (NIST IR 8280 style), where
    counts are small and often zero. The Wald interval p +/- z sqrt(p(1-p)/n) collapses
    to zero width at 0 or n successes; Wilson stays honest there (0/10 -> [0, 0.278]).
    """
    if n < 1 or not 0 <= successes <= n:
        raise InputError("need n >= 1 and 0 <= successes <= n")
    if not z > 0:
        raise InputError("z must be positive", field="z")
    p = successes / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4 * n * n)) / denominator
    lower = 0.0 if successes == 0 else max(0.0, centre - half)
    upper = 1.0 if successes == n else min(1.0, centre + half)
    return lower, upper
