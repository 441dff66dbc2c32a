"""1:N searches of a protocol as score matrices, and their NIST IR 8271 summary.

Failures to enrol and to acquire are scored, not dropped (NIST FRTE does the
same): a gallery image without a face is simply not enrolled, so a probe
whose mate it was cannot be found (a miss); a mated probe without a face
returns no candidates (a miss); a non-mated probe without a face returns no
candidates either, which is a correct non-match, so its top score is set to
:data:`NO_CANDIDATE`, below any weighted cosine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facelead.eval import metrics

NO_CANDIDATE = -2.0
"""Top score of a search that returned nothing: below any weighted cosine (>= -1)."""

MATE_ABSENT = -2
"""``mate`` value of a mated probe whose gallery image failed to enrol."""

FNIR_RANKS = (1, 5, 20)
FPIR_TARGETS = (0.01, 0.003)
CMC_MAX_RANK = 50


@dataclass(frozen=True)
class SearchScores:
    """Per model, one row per probe and one column per enrolled gallery subject.

    ``mate[i]`` is the mate's column, -1 for a non-mated probe, MATE_ABSENT when
    the mate failed to enrol. ``probe_ok[i]`` is False when the probe had no face
    (its row is then meaningless). With ``mate_removed``, every mated row is also
    used as a non-mated search over the gallery without its mate's column.
    """

    scores: dict[str, NDArray[np.float32]]
    mate: NDArray[np.int64]
    probe_ok: NDArray[np.bool_]
    mate_removed: bool = False

    def fused(self, weights: dict[str, float]) -> NDArray[np.float32]:
        """Weighted sum of the members' matrices: the fused template's inner products."""
        names = [name for name, weight in weights.items() if weight > 0]
        total = np.zeros_like(self.scores[names[0]])
        for name in names:
            total += np.float32(weights[name]) * self.scores[name]
        return total


@dataclass(frozen=True)
class ProbeOutcomes:
    """What each search produced: mated ranks/scores and non-mated top scores."""

    ranks: NDArray[np.int64]
    mate_scores: NDArray[np.float64]
    nonmated_top: NDArray[np.float64]


def outcomes(search: SearchScores, matrix: NDArray[np.float32]) -> ProbeOutcomes:
    """Ranks (pessimistic on ties) and scores of every search under one score matrix."""
    mated = search.mate != -1
    ok = search.probe_ok
    searchable = mated & ok & (search.mate >= 0)
    rows = matrix[searchable]
    mates = search.mate[searchable]
    mate_scores = rows[np.arange(rows.shape[0]), mates].astype(np.float64)
    ranks = np.zeros(int(mated.sum()), dtype=np.int64)
    scores = np.full(ranks.shape, np.nan)
    where = searchable[mated]
    ranks[where] = np.sum(rows >= mate_scores[:, None].astype(np.float32), axis=1)
    scores[where] = mate_scores
    top = np.full(int((~mated).sum()), NO_CANDIDATE)
    nm_ok = ok[~mated]
    if nm_ok.any():
        top[nm_ok] = matrix[~mated & ok].max(axis=1)
    if search.mate_removed:
        masked = rows.copy()
        masked[np.arange(rows.shape[0]), mates] = -np.inf
        removed = np.full(ranks.shape, NO_CANDIDATE)
        removed[where] = masked.max(axis=1, initial=NO_CANDIDATE)
        top = np.concatenate([top, removed])
    return ProbeOutcomes(ranks, scores, top.astype(np.float64))


@dataclass(frozen=True)
class IdentificationResult:
    """NIST IR 8271 summary of one model on one protocol."""

    fnir_at_rank: dict[str, float]
    fnir_at_fpir: dict[str, float]
    threshold_at_fpir: dict[str, float]
    cmc: list[float]
    det_fpir: list[float]
    det_fnir: list[float]
    n_mated: int
    n_nonmated: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(result: ProbeOutcomes) -> IdentificationResult:
    """FNIR at ranks 1, 5, 20; FNIR at FPIR 0.01 and 0.003 (any rank); CMC; DET."""
    ranks, scores, top = result.ranks, result.mate_scores, result.nonmated_top
    at_fpir: dict[str, float] = {}
    thresholds: dict[str, float] = {}
    for target in FPIR_TARGETS:
        fnir, threshold = metrics.fnir_at_fpir(ranks, scores, top, target)
        at_fpir[f"{target:g}"], thresholds[f"{target:g}"] = fnir, threshold
    det_fpir, det_fnir, _ = metrics.det_curve(ranks, scores, top, n_points=400)
    return IdentificationResult(
        fnir_at_rank={str(r): metrics.fnir_at_rank(ranks, r) for r in FNIR_RANKS},
        fnir_at_fpir=at_fpir,
        threshold_at_fpir=thresholds,
        cmc=[float(x) for x in metrics.cmc(ranks, CMC_MAX_RANK)],
        det_fpir=[float(x) for x in det_fpir],
        det_fnir=[float(x) for x in det_fnir],
        n_mated=int(ranks.size),
        n_nonmated=int(top.size),
    )


def objective(result: ProbeOutcomes, target_fpir: float = FPIR_TARGETS[0]) -> tuple[float, float]:
    """What fusion weights are chosen to minimise on 1:N, with its standard error:
    FNIR at rank 1 plus FNIR at FPIR = 0.01. Both matter: rank 1 for the examiner's
    first look, the low-FPIR tail for large galleries where every false candidate is a
    possible false lead. The error is binomial over the mated searches (the
    threshold's own sampling error, from the non-mated searches, is not included).
    """
    rank1 = metrics.fnir_at_rank(result.ranks, 1)
    tail, _ = metrics.fnir_at_fpir(
        result.ranks, result.mate_scores, result.nonmated_top, target_fpir
    )
    n = max(int(result.ranks.size), 1)
    error = float(np.sqrt((rank1 * (1 - rank1) + tail * (1 - tail)) / n))
    return rank1 + tail, error


def subset(
    result: ProbeOutcomes, mated: NDArray[np.bool_], nonmated: NDArray[np.bool_]
) -> ProbeOutcomes:
    """The outcomes of a subset of searches (a cross-validation fold)."""
    return ProbeOutcomes(
        result.ranks[mated], result.mate_scores[mated], result.nonmated_top[nonmated]
    )


def standardised(result: ProbeOutcomes, reference: ProbeOutcomes) -> ProbeOutcomes:
    """Scores as z-values of *reference*'s non-mated top scores (ranks unchanged).

    Different fusion weights give scores on different scales and offsets (dlib's
    cosines sit near 0.9, SFace's near 0.4), so the outcomes of folds searched with
    different weights can only be pooled under one threshold after each fold is put
    on a common scale, learnt from its *training* searches only.
    """
    top = reference.nonmated_top[reference.nonmated_top > NO_CANDIDATE]
    centre, spread = float(np.mean(top)), float(np.std(top)) or 1.0
    return ProbeOutcomes(
        result.ranks,
        (result.mate_scores - centre) / spread,
        (result.nonmated_top - centre) / spread,
    )


def concatenate(parts: list[ProbeOutcomes]) -> ProbeOutcomes:
    return ProbeOutcomes(
        np.concatenate([p.ranks for p in parts]),
        np.concatenate([p.mate_scores for p in parts]),
        np.concatenate([p.nonmated_top for p in parts]),
    )
