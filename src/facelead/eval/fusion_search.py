"""Choosing fusion weights by cross-validation, never on the searches being scored.

A fused template scores the weighted sum of its members' cosines, so a fusion
is just a point on the weight simplex; weight 0 drops a model, so searching
the simplex also chooses the model set. Per-model z-normalisation is a
special case (weights divided by each model's impostor standard deviation,
plus an offset that moves thresholds but never rankings), so nothing is lost
by searching raw weights.

The search is an exhaustive grid (step 0.05: 231 points for three models):
cheap, deterministic, and free of local optima. Two rules guard against
fitting noise:

* Parsimony (the one-standard-error rule of Breiman et al., 1984): the model
  set is the smallest whose best training objective is within one standard
  error of the overall best; a model whose gain is indistinguishable from
  sampling noise is not worth its enrolment time and its failure modes.
* Among grid points whose training objective is equally best, the one nearest
  their centroid is taken: the middle of a flat optimum, not its edge.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from facelead.errors import InputError
from facelead.eval import metrics

FloatArray = NDArray[np.float64]


def simplex_grid(n_models: int, step: float = 0.05) -> FloatArray:
    """Every weight vector with entries in multiples of *step* summing to 1."""
    if n_models < 1 or not 0 < step <= 1:
        raise InputError("need one model or more and 0 < step <= 1")
    parts = round(1 / step)
    if abs(parts * step - 1) > 1e-9:
        raise InputError("step must divide 1")
    rows = [
        combo
        for combo in itertools.product(range(parts + 1), repeat=n_models)
        if sum(combo) == parts
    ]
    return np.array(rows, dtype=np.float64) / parts


def pick(
    values: Sequence[float] | FloatArray,
    grid: FloatArray,
    maximise: bool,
    tolerance: float = 0.0,
) -> int:
    """Index of the chosen grid point: fewest models within *tolerance* of the best
    objective, then the best point of that size (ties: the one nearest their centroid).
    """
    cost = np.asarray(values, dtype=np.float64) * (-1.0 if maximise else 1.0)
    support = np.count_nonzero(grid > 0, axis=1)
    allowed = cost.min() + tolerance + 1e-12
    size = min(int(k) for k in np.unique(support) if cost[support == k].min() <= allowed)
    in_size = support == size
    best = cost[in_size].min()
    tied = np.flatnonzero(in_size & np.isclose(cost, best, rtol=0, atol=1e-12))
    centre = grid[tied].mean(axis=0)
    return int(tied[np.argmin(np.linalg.norm(grid[tied] - centre, axis=1))])


def accuracy_se(accuracy: float, n: int) -> float:
    """Binomial standard error of an accuracy measured on *n* pairs."""
    return float(np.sqrt(max(accuracy * (1.0 - accuracy), 0.0) / max(n, 1)))


def training_accuracy(scores: FloatArray, mated: NDArray[np.bool_]) -> float:
    """Accuracy at the best threshold on these very pairs (the LFW training step)."""
    threshold = metrics.best_accuracy_threshold(scores[mated], scores[~mated])
    return float(np.mean((scores >= threshold) == mated))


@dataclass(frozen=True)
class VerificationCV:
    """Per held-out fold: the weights chosen on the other folds and the fold's accuracy."""

    fold_weights: tuple[tuple[float, ...], ...]
    fold_thresholds: tuple[float, ...]
    fold_accuracies: tuple[float, ...]
    scores: FloatArray  # every pair scored with its fold's weights, standardised (see below)

    @property
    def mean_accuracy(self) -> float:
        return float(np.mean(self.fold_accuracies))

    @property
    def std_accuracy(self) -> float:
        return float(np.std(self.fold_accuracies, ddof=1))


def verification_cv(
    pair_scores: FloatArray, mated: NDArray[np.bool_], fold: NDArray[np.int64], grid: FloatArray
) -> VerificationCV:
    """LFW 10-fold with the fusion weights chosen, like the threshold, on the other 9 folds.

    ``pair_scores`` is models x pairs (cosines). For each held-out fold every grid
    point is scored by its best-threshold accuracy on the 9 training folds; the
    winner's threshold (also from the training folds) is applied to the held-out fold.
    The pooled ``scores`` are z-values of each fold's training impostors, because
    different weights put scores on different scales and one pooled TAR @ FMR
    threshold must mean the same thing in every fold.
    """
    fused = grid @ pair_scores  # grid points x pairs
    weights, thresholds, accuracies = [], [], []
    scored = np.zeros(pair_scores.shape[1])
    for label in np.unique(fold):
        test = fold == label
        train = ~test
        values = [training_accuracy(row[train], mated[train]) for row in fused]
        tolerance = accuracy_se(max(values), int(train.sum()))
        best = pick(values, grid, maximise=True, tolerance=tolerance)
        row = fused[best]
        threshold = metrics.best_accuracy_threshold(row[train & mated], row[train & ~mated])
        accuracies.append(float(np.mean((row[test] >= threshold) == mated[test])))
        weights.append(tuple(float(w) for w in grid[best]))
        thresholds.append(threshold)
        # Pooled TAR @ FMR needs one scale: z-values of the training impostor scores.
        impostors = row[train & ~mated]
        scored[test] = (row[test] - impostors.mean()) / (impostors.std() or 1.0)
    return VerificationCV(tuple(weights), tuple(thresholds), tuple(accuracies), scored)


Objective = Callable[[int, NDArray[np.bool_], NDArray[np.bool_]], tuple[float, float]]
"""objective(grid index, mated mask, non-mated mask) -> (value to minimise, its standard error)."""


def choose(
    objective: Objective,
    mated: NDArray[np.bool_],
    nonmated: NDArray[np.bool_],
    grid: FloatArray,
) -> int:
    """The grid point :func:`pick` takes for *objective* on these searches."""
    scored = [objective(i, mated, nonmated) for i in range(len(grid))]
    values = [value for value, _ in scored]
    _, tolerance = scored[int(np.argmin(values))]
    return pick(values, grid, maximise=False, tolerance=tolerance)


def identity_folds(identities: Sequence[str], folds: int, seed: int) -> NDArray[np.int64]:
    """Fold label per probe, by identity: all images of one person share a fold, so
    weights are never chosen on another photo of a person being scored.
    """
    names = sorted(set(identities))
    order = np.random.default_rng(seed).permutation(len(names))
    label = {names[i]: position % folds for position, i in enumerate(order)}
    return np.array([label[name] for name in identities], dtype=np.int64)


@dataclass(frozen=True)
class IdentificationCV:
    fold_weights: tuple[tuple[float, ...], ...]
    choice: NDArray[np.int64]  # grid index used for each fold


def identification_cv(
    objective: Objective,
    mated_fold: NDArray[np.int64],
    nonmated_fold: NDArray[np.int64],
    grid: FloatArray,
) -> IdentificationCV:
    """For each fold, the grid point minimising *objective* on the other folds' searches."""
    labels = np.unique(np.concatenate([mated_fold, nonmated_fold]))
    choice = []
    for label in labels:
        choice.append(choose(objective, mated_fold != label, nonmated_fold != label, grid))
    weights = tuple(tuple(float(w) for w in grid[i]) for i in choice)
    return IdentificationCV(weights, np.array(choice, dtype=np.int64))
