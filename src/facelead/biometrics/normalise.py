"""Cohort score normalisation: a score measured against how the probe scores with strangers.

Why: a face model's impostor scores are not spread alike for every face. NIST IR
8280 found that with one global threshold, some groups of people (often women)
collect several times more false matches, because their faces score higher
against *everyone*, not only against their mates. Cohort Z-norm (Auckenthaler
et al. 2000, from speaker verification) corrects this per face: each score is
expressed in standard deviations above the mean score of that face against a
fixed cohort of templates of people known not to be it. A face that scores high
against strangers has its scores lowered accordingly.

* ``top_k=None`` is plain Z-norm over the whole cohort. ``top_k=k`` uses only
  the face's k highest cohort scores (adaptive, "top-norm" / AS-norm,
  Sturim & Reynolds 2005): its nearest strangers, which are what a false match
  is made of.
* :meth:`CohortNorm.apply` normalises each *probe row* by that probe's own
  statistics: an increasing affine map per row, so the order of one probe's
  candidates (and so every rank) is unchanged; only thresholds move.
* :meth:`CohortNorm.symmetric` averages both sides' Z-values (S-norm), for 1:1
  comparisons where neither side is "the probe".

Demographic-blind by construction: the only inputs are templates and scores.
There is no parameter through which a sex, race or any other label could reach
it, and the cohort is chosen without labels (a seeded sample of templates).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from facelead.errors import InputError

FloatArray = NDArray[np.float64]

MIN_STD = 1e-6
"""Floor of a cohort standard deviation, so a degenerate cohort cannot divide by zero."""


@dataclass(frozen=True)
class CohortStats:
    """Per face (row): mean and standard deviation of its cohort scores."""

    mean: FloatArray
    std: FloatArray


def _matrix(values: ArrayLike, name: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2:
        raise InputError(f"{name} must be two-dimensional", field=name)
    if not np.isfinite(arr).all():
        raise InputError(f"{name} must contain only finite scores", field=name)
    return arr


@dataclass(frozen=True)
class CohortNorm:
    """Z-norm against a fixed cohort; build with :meth:`fit`."""

    cohort: NDArray[np.float32]
    top_k: int | None = None

    @classmethod
    def fit(cls, cohort_templates: ArrayLike, top_k: int | None = None) -> CohortNorm:
        """Keep the cohort's templates (rows); ``top_k`` None: the whole cohort."""
        cohort = np.asarray(cohort_templates, dtype=np.float32)
        if cohort.ndim != 2 or cohort.shape[0] < 2:
            raise InputError("a cohort needs two or more templates (rows)", field="cohort")
        if not np.isfinite(cohort).all():
            raise InputError("cohort templates must be finite", field="cohort")
        if top_k is not None and not 2 <= top_k <= cohort.shape[0]:
            raise InputError("top_k must lie between 2 and the cohort size", field="top_k")
        return cls(cohort, top_k)

    @property
    def size(self) -> int:
        return int(self.cohort.shape[0])

    def cohort_scores(self, templates: ArrayLike) -> FloatArray:
        """Each template (row) against every cohort template: inner products."""
        rows = np.asarray(templates, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.cohort.shape[1]:
            raise InputError("templates must be rows of the cohort's dimension")
        return (rows @ self.cohort.T).astype(np.float64)

    def statistics(self, probe_vs_cohort_scores: ArrayLike) -> CohortStats:
        """Mean and std of each row's cohort scores (its top_k highest with ``top_k``)."""
        scores = _matrix(probe_vs_cohort_scores, "probe_vs_cohort_scores")
        if scores.shape[1] != self.size:
            raise InputError("need one score per cohort template in each row")
        if self.top_k is not None:
            scores = np.partition(scores, self.size - self.top_k, axis=1)[:, -self.top_k :]
        return CohortStats(scores.mean(axis=1), np.maximum(scores.std(axis=1), MIN_STD))

    def apply(self, probe_scores: ArrayLike, probe_vs_cohort_scores: ArrayLike) -> FloatArray:
        """Row i of *probe_scores* (probe i's candidate scores) as Z-values of probe i."""
        scores = _matrix(probe_scores, "probe_scores")
        stats = self.statistics(probe_vs_cohort_scores)
        if stats.mean.shape[0] != scores.shape[0]:
            raise InputError("need one row of cohort scores per probe")
        return (scores - stats.mean[:, None]) / stats.std[:, None]

    def symmetric(
        self,
        scores: ArrayLike,
        first_vs_cohort_scores: ArrayLike,
        second_vs_cohort_scores: ArrayLike,
    ) -> FloatArray:
        """S-norm of a first x second score matrix: mean of the rows' and columns' Z-values."""
        matrix = _matrix(scores, "scores")
        by_row = self.apply(matrix, first_vs_cohort_scores)
        by_column = self.apply(matrix.T, second_vs_cohort_scores).T
        return 0.5 * (by_row + by_column)
