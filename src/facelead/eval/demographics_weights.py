"""Per-model fusion weighting as a mitigation: the women/men FMR ratio over the weight simplex.

Models differ in their demographic differentials (issue 9 measured a women/men
FMR ratio of 2.19x for SFace, 3.30x for dlib and 0.93x for FaceNet), so the
fusion weights move the fused model's ratio. Every point of the weight grid is
measured: the 1:1 women/men FMR ratio at one global threshold (same protocol as
:func:`facelead.eval.demographics.verification`) and the 1:N FNIR at rank 1 and
at FPIR = 0.01 (the accuracy protocol).

Matching stays demographic-blind: a weight vector is a fixed model id, the same
for every face. The *choice* of weights, however, is made with the labels on
these LFW people, so the chosen point's ratio is optimistic; it is re-measured
on held-out people (:func:`split_half`) and shown next to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facelead.eval import metrics
from facelead.eval.demographics import Subjects
from facelead.eval.demographics_stats import finite
from facelead.eval.fusion_search import simplex_grid
from facelead.eval.identification import SearchScores, outcomes
from facelead.eval.templates import Templates

FloatArray = NDArray[np.float64]
RANK1_TOLERANCE = 0.002


@dataclass(frozen=True)
class PairScores:
    """Per member model, every impostor score of the subjects' reference templates (i < j).

    ``pair_sex`` is "F" or "M" for a same-sex pair and "" for a cross-sex one: the
    threshold is set over all pairs, the group FMRs over same-sex pairs only.
    """

    by_model: dict[str, NDArray[np.float32]]
    pair_sex: NDArray[np.str_]
    person_first: NDArray[np.int32]
    person_second: NDArray[np.int32]

    @classmethod
    def of(cls, templates: Templates, subjects: Subjects, names: Sequence[str]) -> PairScores:
        i, j = np.triu_indices(len(subjects.names), 1)
        by_model = {}
        for name in names:
            vectors = templates.matrix(name)[0][subjects.reference]
            by_model[name] = (vectors @ vectors.T)[i, j].astype(np.float32)
        sex = subjects.sex
        pair_sex = np.where(sex[i] == sex[j], sex[i], "")
        return cls(by_model, pair_sex, i.astype(np.int32), j.astype(np.int32))

    def ratio(
        self, weights: dict[str, float], target_fmr: float, keep: NDArray[np.bool_] | None = None
    ) -> tuple[float, float, float]:
        """(women/men FMR ratio, FMR women, FMR men) at one global threshold.

        *keep* (per person) restricts the pairs to those between kept people.
        """
        fused = sum(np.float32(w) * self.by_model[n] for n, w in weights.items() if w > 0)
        scores = np.asarray(fused, dtype=np.float64)
        sex = self.pair_sex
        if keep is not None:
            pairs = keep[self.person_first] & keep[self.person_second]
            scores, sex = scores[pairs], sex[pairs]
        threshold = metrics.threshold_at_fmr(scores, target_fmr)
        above = scores >= threshold
        fmr_f, fmr_m = float(np.mean(above[sex == "F"])), float(np.mean(above[sex == "M"]))
        return (fmr_f / fmr_m if fmr_m else float("nan")), fmr_f, fmr_m


def sweep(
    pairs: PairScores,
    search: SearchScores,
    pool: Sequence[str],
    target_fmr: float,
    step: float,
) -> list[dict[str, Any]]:
    """Every grid point: its weights, 1:1 women/men FMR ratio, 1:N FNIR (rank 1, FPIR .01)."""
    points = []
    for row in simplex_grid(len(pool), step):
        weights = {n: float(w) for n, w in zip(pool, row, strict=True)}
        ratio, fmr_f, fmr_m = pairs.ratio(weights, target_fmr)
        found = outcomes(search, search.fused({n: w for n, w in weights.items() if w > 0}))
        tail, _ = metrics.fnir_at_fpir(found.ranks, found.mate_scores, found.nonmated_top, 0.01)
        points.append(
            {
                "weights": [weights[n] for n in pool],
                "women_men_fmr_ratio": ratio,
                "fmr_women": fmr_f,
                "fmr_men": fmr_m,
                "fnir_rank1": metrics.fnir_at_rank(found.ranks, 1),
                "fnir_at_fpir": tail,
            }
        )
    return points


def choose(points: Sequence[dict[str, Any]], baseline_rank1: float) -> int | None:
    """The point with the lowest ratio among those within 0.2 points of the baseline's
    FNIR at rank 1 (issue 9's accuracy rule); ties: the lower FNIR at rank 1."""
    allowed = [
        i
        for i, p in enumerate(points)
        if p["fnir_rank1"] <= baseline_rank1 + RANK1_TOLERANCE
        and np.isfinite(p["women_men_fmr_ratio"])
    ]
    if not allowed:
        return None
    return min(allowed, key=lambda i: (points[i]["women_men_fmr_ratio"], points[i]["fnir_rank1"]))


def split_half(
    pairs: PairScores,
    points: Sequence[dict[str, Any]],
    pool: Sequence[str],
    target_fmr: float,
    baseline_rank1: float,
    seed: int,
) -> dict[str, Any]:
    """Choose on one seeded half of the people, measure the ratio on the other half.

    Only the 1:1 ratio is re-chosen per half (1:N accuracy does not depend on labels,
    so its constraint is the same); this exposes how much of the chosen point's
    ratio is selection luck.
    """
    n_people = int(max(pairs.person_first.max(), pairs.person_second.max())) + 1
    half = np.random.default_rng(seed).permutation(n_people) < n_people // 2
    result: dict[str, Any] = {}
    for label, choose_on in (("a", half), ("b", ~half)):
        ratios = [
            pairs.ratio(dict(zip(pool, p["weights"], strict=True)), target_fmr, choose_on)[0]
            for p in points
        ]
        local = [dict(p, women_men_fmr_ratio=r) for p, r in zip(points, ratios, strict=True)]
        picked = choose(local, baseline_rank1)
        if picked is None:
            result[label] = None
            continue
        weights = dict(zip(pool, points[picked]["weights"], strict=True))
        result[label] = {
            "weights": points[picked]["weights"],
            "ratio_where_chosen": finite(ratios[picked]),
            "ratio_on_other_half": finite(pairs.ratio(weights, target_fmr, ~choose_on)[0]),
        }
    return result
