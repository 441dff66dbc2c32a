"""The LFW accuracy run: every single model and the fused default, 1:1 and 1:N.

What is computed, in order:

1. Faces and templates of every LFW image under every member model (cached).
2. Per model id (each single model, the default fusion, any ``compare`` ids):
   10-fold verification on ``pairs.txt`` and the 1:N protocol of
   :func:`facelead.eval.protocol.lfw_identification`.
3. The fusion *selection*, by cross-validation: for verification the weights
   are chosen on 9 folds and scored on the 10th; for 1:N the probes are split
   into 10 folds by identity and each fold is searched with weights chosen on
   the other nine. The weights the same procedure picks on all of LFW are
   reported too: they are what the default model id was set to.
4. A score -> estimated-FMR table of the default model from all 1:N impostor
   comparisons (every probe against every gallery subject not its mate).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facelead.biometrics.embed import EMBEDDERS, base_member
from facelead.biometrics.fusion import MODEL_CONFIGS, FusionConfig, model_config
from facelead.errors import InputError
from facelead.eval import fusion_search, metrics
from facelead.eval.cache import TemplateCache
from facelead.eval.identification import (
    ProbeOutcomes,
    SearchScores,
    concatenate,
    objective,
    outcomes,
    standardised,
    subset,
    summarise,
)
from facelead.eval.protocol import IdentificationSplit, Pair, lfw_identification, read_pairs
from facelead.eval.scores import (
    TemplateIndex,
    acquisition_counts,
    pair_scores,
    quality_counts,
    search_scores,
)
from facelead.eval.templates import DetectionPolicy, Progress, extract

FUSION_POOL = ("sface-flip", "facenet-v2", "dlib-v2")
"""Member models the fusion search of the docs may combine (weight 0 drops one)."""
GRID_STEP = 0.05
CV_FOLDS = 10
CV_SEED = 11
CALIBRATION_POINTS = 60


def default_pool(model_id: str) -> tuple[str, ...]:
    """The model's own members, a centred one as its base model: what a plain
    ``facelead eval lfw`` extracts, so a first run embeds every photo once per member
    (about 15 minutes on 2 cores for fusion-v5) instead of also running dlib."""
    return tuple(dict.fromkeys(base_member(name) for name in model_config(model_id).names))


@dataclass
class ModelReport:
    """One model id's results: 10-fold verification and the 1:N summary."""

    model_id: str
    members: list[tuple[str, float]]
    verification: dict[str, Any]
    identification: dict[str, Any]


@dataclass
class LfwReport:
    default_model_id: str
    models: dict[str, ModelReport]
    selection: dict[str, Any]
    counts: dict[str, Any]
    calibration: metrics.CalibrationTable
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The JSON of ``facelead eval lfw``; the top level is the default model."""
        top = self.models[self.default_model_id]
        return {
            "model_id": self.default_model_id,
            "verification_accuracy": top.verification["mean_accuracy"],
            "verification_accuracy_std": top.verification["std_accuracy"],
            "tar_at_fmr_1e-3": top.verification["tar_at_target_fmr"],
            "fnir_rank1": top.identification["fnir_at_rank"]["1"],
            "fnir_rank5": top.identification["fnir_at_rank"]["5"],
            "fnir_rank20": top.identification["fnir_at_rank"]["20"],
            "fnir_at_fpir_0.01": top.identification["fnir_at_fpir"]["0.01"],
            "fnir_at_fpir_0.003": top.identification["fnir_at_fpir"]["0.003"],
            "threshold_at_fpir_0.01": top.identification["threshold_at_fpir"]["0.01"],
            "threshold_at_fpir_0.003": top.identification["threshold_at_fpir"]["0.003"],
            "models": {k: asdict(v) for k, v in self.models.items()},
            "selection": self.selection,
            "counts": self.counts,
            "calibration": {
                "model_id": self.calibration.model_id,
                "n_impostors": self.calibration.n_impostors,
                "points": len(self.calibration.thresholds),
            },
            "timings_s": self.timings,
        }


def verification_dict(result: metrics.VerificationResult) -> dict[str, Any]:
    return asdict(result)


@dataclass
class _Inputs:
    pairs: list[Pair]
    split: IdentificationSplit
    index: TemplateIndex
    pair_scores: dict[str, NDArray[np.float64]]
    search: SearchScores


def _embedder_names(model_ids: Sequence[str], pool: Sequence[str]) -> list[str]:
    unknown = [name for name in pool if name not in EMBEDDERS]
    if unknown:
        known = ", ".join(EMBEDDERS)
        raise InputError(f"unknown embedder(s) {', '.join(unknown)}; known: {known}")
    names: list[str] = list(pool)
    for model_id in model_ids:
        names.extend(n for n in model_config(model_id).names if n not in names)
    return names


def load_inputs(
    root: Path,
    names: Sequence[str],
    cache: TemplateCache,
    workers: int,
    progress: Progress | None,
) -> _Inputs:
    pairs = read_pairs(root)
    split = lfw_identification(root)
    paths = sorted(
        {p for pair in pairs for p in (pair.first, pair.second)}
        | {p for p, _ in split.gallery + split.mated + split.nonmated}
    )
    embedders = [EMBEDDERS[name]() for name in names]
    templates = extract(paths, embedders, cache, DetectionPolicy(), workers, progress)
    index = TemplateIndex.of(templates)
    by_pair = {name: pair_scores(index, pairs, name) for name in names}
    return _Inputs(pairs, split, index, by_pair, search_scores(index, split, names))


def single_config(name: str) -> FusionConfig:
    """The registered single-model id of embedder *name* (e.g. sface-flip -> sface-v2)."""
    for config in MODEL_CONFIGS.values():
        if config.members == ((name, 1.0),):
            return config
    return FusionConfig(name, ((name, 1.0),))


def _fold_arrays(pairs: Sequence[Pair]) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
    mated = np.array([p.mated for p in pairs], dtype=bool)
    fold = np.array([p.fold for p in pairs], dtype=np.int64)
    return mated, fold


def evaluate_config(inputs: _Inputs, config: FusionConfig) -> ModelReport:
    """Verification and 1:N of one fixed model id (its weights as registered)."""
    weights = dict(config.members)
    mated, fold = _fold_arrays(inputs.pairs)
    scores = sum(w * inputs.pair_scores[name] for name, w in weights.items())
    verification = metrics.kfold_verification(np.asarray(scores), mated, fold)
    found = outcomes(inputs.search, inputs.search.fused(weights))
    return ModelReport(
        config.model_id,
        [(n, w) for n, w in config.members],
        verification_dict(verification),
        summarise(found).as_dict(),
    )


def _grid_outcomes(
    inputs: _Inputs, grid: NDArray[np.float64], pool: Sequence[str]
) -> list[ProbeOutcomes]:
    return [
        outcomes(inputs.search, inputs.search.fused(dict(zip(pool, row, strict=True))))
        for row in grid
    ]


def select_fusion(inputs: _Inputs, pool: Sequence[str] = FUSION_POOL) -> dict[str, Any]:
    """Cross-validated fusion weights for 1:1 and 1:N, and the all-LFW choice."""
    grid = fusion_search.simplex_grid(len(pool), GRID_STEP)
    mated, fold = _fold_arrays(inputs.pairs)
    per_model = np.stack([inputs.pair_scores[name] for name in pool])
    verification = fusion_search.verification_cv(per_model, mated, fold, grid)
    tar, _ = metrics.tar_at_fmr(verification.scores[mated], verification.scores[~mated], 1e-3)
    found = _grid_outcomes(inputs, grid, pool)
    split = inputs.split
    mated_fold = fusion_search.identity_folds([i for _, i in split.mated], CV_FOLDS, CV_SEED)
    nonmated_fold = fusion_search.identity_folds([i for _, i in split.nonmated], CV_FOLDS, CV_SEED)

    def cost(i: int, m: NDArray[np.bool_], n: NDArray[np.bool_]) -> tuple[float, float]:
        return objective(subset(found[i], m, n))

    ident = fusion_search.identification_cv(cost, mated_fold, nonmated_fold, grid)
    labels = np.unique(np.concatenate([mated_fold, nonmated_fold]))
    held_out = concatenate(
        [
            standardised(
                subset(found[int(c)], mated_fold == label, nonmated_fold == label),
                subset(found[int(c)], mated_fold != label, nonmated_fold != label),
            )
            for label, c in zip(labels, ident.choice, strict=True)
        ]
    )
    everything = np.ones(len(split.mated), bool), np.ones(len(split.nonmated), bool)
    all_lfw = fusion_search.choose(cost, *everything, grid)
    return {
        "pool": list(pool),
        "grid_step": GRID_STEP,
        "objective_1n": "FNIR(rank 1) + FNIR(FPIR = 0.01), minimised",
        "objective_1to1": "training-fold accuracy at the best threshold, maximised",
        "parsimony": "fewest models whose best objective is within one standard error of "
        "the overall best (one-standard-error rule)",
        "verification_cv": {
            "fold_weights": [list(w) for w in verification.fold_weights],
            "fold_accuracies": list(verification.fold_accuracies),
            "mean_accuracy": verification.mean_accuracy,
            "std_accuracy": verification.std_accuracy,
            "tar_at_fmr_1e-3": tar,
        },
        "identification_cv": {
            "folds": CV_FOLDS,
            "seed": CV_SEED,
            "fold_weights": [list(w) for w in ident.fold_weights],
            "result": summarise(held_out).as_dict(),
        },
        "all_lfw_1n_weights": [float(w) for w in grid[all_lfw]],
    }


def nonmated_tail(inputs: _Inputs, config: FusionConfig, count: int = 12) -> list[dict[str, Any]]:
    """The highest-scoring non-mated searches: who the probe resembled, and how much.

    FPIR = 0.003 allows 6 of LFW's 2,034 non-mated searches to return a candidate, so
    FNIR there is set by the few highest non-mated scores. Listing them lets a reader
    see when those are LFW labelling problems (one person under two names, twins)
    rather than model errors.
    """
    search = inputs.search
    rows = np.flatnonzero((search.mate == -1) & search.probe_ok)
    if rows.size == 0:
        return []
    matrix = search.fused(dict(config.members))[rows]
    best = matrix.argmax(axis=1)
    top = matrix[np.arange(rows.size), best]
    has_face = inputs.index.has_face([p for p, _ in inputs.split.gallery])
    enrolled = [i for (_, i), ok in zip(inputs.split.gallery, has_face, strict=True) if ok]
    probes = [i for _, i in inputs.split.mated] + [i for _, i in inputs.split.nonmated]
    order = np.argsort(-top, kind="stable")[:count]
    return [
        {"probe": probes[rows[k]], "candidate": enrolled[best[k]], "score": float(top[k])}
        for k in order
    ]


def calibrate(inputs: _Inputs, config: FusionConfig) -> metrics.CalibrationTable:
    """Score -> FMR from every impostor comparison of the 1:N protocol (tens of millions)."""
    matrix = inputs.search.fused(dict(config.members))
    search = inputs.search
    rows = matrix[search.probe_ok]
    mates = search.mate[search.probe_ok]
    keep = np.ones(rows.shape, dtype=bool)
    has_mate = np.flatnonzero(mates >= 0)
    keep[has_mate, mates[has_mate]] = False
    return metrics.build_calibration(rows[keep], config.model_id, CALIBRATION_POINTS)


def run_lfw(
    root: Path,
    default_model_id: str,
    cache: TemplateCache,
    compare: Sequence[str] = (),
    workers: int = 2,
    progress: Progress | None = None,
    select: bool = True,
    pool: Sequence[str] = FUSION_POOL,
) -> LfwReport:
    """Everything of the module docstring; ``select=False`` skips the weight search."""
    start = time.perf_counter()
    model_ids = [default_model_id, *compare]
    names = _embedder_names(model_ids, pool)
    inputs = load_inputs(root, names, cache, workers, progress)
    templates_done = time.perf_counter()
    models: dict[str, ModelReport] = {}
    for config in (single_config(name) for name in names):
        models[config.model_id] = evaluate_config(inputs, config)
    for model_id in dict.fromkeys(model_ids):
        models[model_id] = evaluate_config(inputs, model_config(model_id))
    selection = select_fusion(inputs, pool) if select else {}
    config = model_config(default_model_id)
    calibration = calibrate(inputs, config)
    counts = {
        "protocol": inputs.split.counts,
        "pairs": len(inputs.pairs),
        "templates_computed": inputs.index.templates.computed,
        "nonmated_tail": nonmated_tail(inputs, config),
        "acquisition": acquisition_counts(inputs.index, inputs.split),
        "quality_gate_would_flag": {
            "mated_probes": quality_counts(inputs.index, [p for p, _ in inputs.split.mated]),
            "nonmated_probes": quality_counts(inputs.index, [p for p, _ in inputs.split.nonmated]),
        },
    }
    end = time.perf_counter()
    timings = {"templates": templates_done - start, "scoring": end - templates_done}
    return LfwReport(default_model_id, models, selection, counts, calibration, timings)
