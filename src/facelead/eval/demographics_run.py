"""The ``facelead eval demographics`` run: differentials of every model, then a mitigation.

The mitigation measured is cohort score normalisation
(:class:`facelead.biometrics.normalise.CohortNorm`), demographic-blind: the
cohort is a seeded sample, drawn by name only, of :data:`COHORT_SIZE` gallery
people of the 1:N protocol who have a single LFW photo, so it is never the mate
of any probe. Those people are also left out of the 1:1 analysis of the
mitigation (before *and* after), since a person's own photo in the cohort would
distort their statistics; in 1:N they stay enrolled, as a service's cohort of
gallery templates would.

* 1:N: each probe's scores are Z-normalised by its own cohort statistics. That
  is increasing per probe, so every rank and FNIR at rank 1 are unchanged
  (checked on the full score matrix, not assumed); FNIR at FPIR = 0.01 and the
  per-group FPIR move, because the threshold now means "so many standard
  deviations above this probe's strangers".
* 1:1: symmetric S-norm (neither side is the probe), one global threshold
  re-set at the same target FMR.

Whether a method may become the default follows issue 9's rule: it must narrow
the women/men FMR ratio without raising overall FNIR at rank 1 by more than
0.2 percentage points; the brief's target is a ratio of at most 1.5.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facelead.biometrics.centre import centre_metadata
from facelead.biometrics.embed import EMBEDDERS
from facelead.biometrics.fusion import FusionConfig, model_config
from facelead.biometrics.normalise import CohortNorm
from facelead.errors import InputError
from facelead.eval import demographics_stats as stats
from facelead.eval.cache import TemplateCache
from facelead.eval.centring import SPLIT_SEED, Population, centre_file_of, uncentred
from facelead.eval.centring import sweep as sweep_blends
from facelead.eval.demographics import (
    Labels,
    Probes,
    Scorer,
    Subjects,
    build_subjects,
    fused_templates,
    identification,
    label_counts,
    read_labels,
    verification,
)
from facelead.eval.demographics_weights import PairScores, choose, split_half, sweep
from facelead.eval.identification import NO_CANDIDATE, ProbeOutcomes, SearchScores, outcomes
from facelead.eval.lfw import FUSION_POOL, single_config
from facelead.eval.protocol import IdentificationSplit, lfw_identification, read_lfw_images
from facelead.eval.scores import TemplateIndex, search_scores
from facelead.eval.templates import NO_FACE, DetectionPolicy, Progress, Templates, extract

COHORT_SIZE = 1000
COHORT_SEED = 8280
METHODS: dict[str, int | None] = {"znorm": None, "znorm-top100": 100}
"""Normalisers measured: plain Z-norm over the whole cohort, and over each face's 100
nearest cohort members (fixed before measuring, not tuned on the result)."""
RANK1_TOLERANCE = 0.002
RATIO_TARGET = 1.5
TARGET_FPIR = 0.01
WEIGHTED_ID = "fusion-weights-candidate"
"""Name of the fusion weights chosen by :func:`weighting` (not a registered model id)."""


def choose_cohort(
    images: dict[str, list[Path]],
    split: IdentificationSplit,
    index: TemplateIndex,
    size: int = COHORT_SIZE,
    seed: int = COHORT_SEED,
) -> list[str]:
    """A seeded sample, by sorted name, of enrolled single-photo people with a face."""
    status = index.templates.status
    pool = sorted(
        name
        for path, name in split.gallery
        if len(images[name]) == 1 and status[index.row[path]] != NO_FACE
    )
    if len(pool) < size:
        raise InputError(f"only {len(pool)} people can form the cohort; {size} wanted")
    order = np.random.default_rng(seed).permutation(len(pool))[:size]
    return sorted(pool[i] for i in order)


def normalised_outcomes(
    found: ProbeOutcomes, mate: NDArray[np.int64], norm: CohortNorm, probes: NDArray[np.float32]
) -> ProbeOutcomes:
    """The same searches with probe-side Z-norm: ranks kept, scores normalised.

    Z-norm is increasing per probe, so the top candidate of a normalised row is the
    normalised top score and the mate keeps its rank. A probe without a face still
    returns nothing: its top stays below every real score.
    """
    cohort = norm.cohort_scores(probes)
    mated = mate != -1
    raw = found.mate_scores
    mate_z = norm.apply(np.nan_to_num(raw, nan=0.0)[:, None], cohort[mated])[:, 0]
    mate_z[np.isnan(raw)] = np.nan
    top = norm.apply(found.nonmated_top[:, None], cohort[~mated])[:, 0]
    failed = found.nonmated_top <= NO_CANDIDATE
    if failed.any():
        top[failed] = min(NO_CANDIDATE, float(top[~failed].min()) - 1.0)
    return ProbeOutcomes(found.ranks, mate_z, top)


def ranks_unchanged(
    search: SearchScores,
    matrix: NDArray[np.float32],
    found: ProbeOutcomes,
    norm: CohortNorm,
    probes: NDArray[np.float32],
) -> bool:
    """Recompute every mate's rank on the fully normalised matrix and compare."""
    rows = (search.mate >= 0) & search.probe_ok
    z = norm.apply(matrix[rows], norm.cohort_scores(probes[rows]))
    mates = search.mate[rows]
    mate_z = z[np.arange(mates.size), mates]
    ranks = np.sum(z >= mate_z[:, None], axis=1)
    searchable = rows[search.mate != -1]
    return bool(np.array_equal(ranks, found.ranks[searchable]))


def _group_ratio(block: dict[str, Any], group: str, reference: str) -> float | None:
    groups = block["groups"]
    if group not in groups or reference not in groups:
        return None
    top, bottom = groups[group]["rate"], groups[reference]["rate"]
    return None if top is None or not bottom else top / bottom


def rule(
    before_v: dict[str, Any],
    after_v: dict[str, Any],
    before_i: dict[str, Any],
    after_i: dict[str, Any],
) -> dict[str, Any]:
    """Issue 9's default rule and the brief's ratio target, for one method on one model."""
    r0 = before_v["women_men_fmr_ratio"]["ratio"]
    r1 = after_v["women_men_fmr_ratio"]["ratio"]
    change = after_i["fnir_rank1"] - before_i["fnir_rank1"]
    narrows = r0 is not None and r1 is not None and r1 < r0
    within = change <= RANK1_TOLERANCE
    return {
        "women_men_fmr_ratio_before": r0,
        "women_men_fmr_ratio_after": r1,
        "women_men_fpir_ratio_before": _group_ratio(before_i["sex"]["fpir"], "F", "M"),
        "women_men_fpir_ratio_after": _group_ratio(after_i["sex"]["fpir"], "F", "M"),
        "fnir_rank1_before": before_i["fnir_rank1"],
        "fnir_rank1_after": after_i["fnir_rank1"],
        "fnir_at_fpir_before": before_i["fnir_at_fpir"],
        "fnir_at_fpir_after": after_i["fnir_at_fpir"],
        "narrows_ratio": narrows,
        "rank1_within_0.2_points": within,
        "ratio_at_most_1.5": r1 is not None and r1 <= RATIO_TARGET,
        "qualifies_as_default": narrows and within,
    }


@dataclass(frozen=True)
class MitigationPlan:
    """The cohort and the normalisers to measure (tests use a small cohort)."""

    cohort_size: int = COHORT_SIZE
    seed: int = COHORT_SEED
    methods: tuple[tuple[str, int | None], ...] = tuple(METHODS.items())
    weight_step: float = 0.1


@dataclass(frozen=True)
class Protocol:
    """Everything the per-model analysis needs, fixed once per run."""

    search: SearchScores
    probes: Probes
    probe_rows: NDArray[np.int64]
    subjects: Subjects
    population: Subjects
    cohort_rows: NDArray[np.int64]
    target_fmr: float
    boot: stats.Bootstrap
    plan: MitigationPlan


def mitigation(
    protocol: Protocol,
    fused: NDArray[np.float32],
    matrix: NDArray[np.float32],
    found: ProbeOutcomes,
    before_i: dict[str, Any],
) -> dict[str, Any]:
    """Before/after differentials of every normaliser of the plan, for one model."""
    p = protocol
    before_v = verification(Scorer(fused), p.population, p.target_fmr, p.boot)
    probes = fused[p.probe_rows]
    methods: dict[str, Any] = {}
    for name, top_k in p.plan.methods:
        norm = CohortNorm.fit(fused[p.cohort_rows], top_k)
        after_v = verification(Scorer(fused, norm), p.population, p.target_fmr, p.boot)
        normalised = normalised_outcomes(found, p.search.mate, norm, probes)
        after_i = identification(normalised, p.probes, TARGET_FPIR, p.boot)
        methods[name] = {
            "top_k": top_k,
            "verification": after_v,
            "identification": after_i,
            "rank1_unchanged": ranks_unchanged(p.search, matrix, found, norm, probes),
            "rule": rule(before_v, after_v, before_i, after_i),
        }
    return {"before": {"verification": before_v}, "methods": methods}


def evaluate_model(
    protocol: Protocol, templates: Templates, config: FusionConfig
) -> dict[str, Any]:
    """One model id: 1:1 and 1:N differentials, and the mitigation measured on it."""
    fused = fused_templates(templates, config)
    matrix = protocol.search.fused(dict(config.members))
    found = outcomes(protocol.search, matrix)
    ident = identification(found, protocol.probes, TARGET_FPIR, protocol.boot)
    subjects, target, boot = protocol.subjects, protocol.target_fmr, protocol.boot
    return {
        "members": [[n, w] for n, w in config.members],
        "verification": verification(Scorer(fused), subjects, target, boot),
        "identification": ident,
        "mitigation": mitigation(protocol, fused, matrix, found, ident),
    }


def weighting(
    protocol: Protocol, templates: Templates, pool: Sequence[str], default: dict[str, Any]
) -> dict[str, Any]:
    """Fusion weights as the mitigation: the grid, the chosen point and its full tables.

    The chosen weights are measured like any model (differentials with intervals) and
    judged by the same rule against the default model, on all people.
    """
    pairs = PairScores.of(templates, protocol.subjects, pool)
    step = protocol.plan.weight_step
    points = sweep(pairs, protocol.search, pool, protocol.target_fmr, step)
    baseline = default["identification"]["fnir_rank1"]
    picked = choose(points, baseline)
    body: dict[str, Any] = {
        "pool": list(pool),
        "step": step,
        "points": [
            {k: stats.finite(v) if k != "weights" else v for k, v in p.items()} for p in points
        ],
        "chosen": picked,
        "split_half": split_half(
            pairs, points, pool, protocol.target_fmr, baseline, protocol.plan.seed
        ),
    }
    if picked is not None:
        weights = zip(pool, points[picked]["weights"], strict=True)
        config = FusionConfig(WEIGHTED_ID, tuple((n, w) for n, w in weights if w > 0))
        model = evaluate_model(protocol, templates, config)
        body["model"] = model
        body["rule"] = rule(
            default["verification"],
            model["verification"],
            default["identification"],
            model["identification"],
        )
    return body


def model_configs(model_id: str, pool: Sequence[str] = FUSION_POOL) -> list[FusionConfig]:
    """Every single model of the pool, the default's uncentred *before* if it is centred,
    then the model id asked for (the default)."""
    configs = {c.model_id: c for c in (single_config(name) for name in pool)}
    default = model_config(model_id)
    parent = uncentred(default)
    if parent is not None:
        configs[parent.model_id] = parent
    configs[model_id] = default
    return list(configs.values())


def centring(
    protocol: Protocol, templates: Templates, default: FusionConfig, models: dict[str, Any]
) -> dict[str, Any] | None:
    """The default's centre judged as a mitigation: its uncentred parent is the *before*;
    the blend sweep shows the ratio where the centre was fitted and on held-out people."""
    parent = uncentred(default)
    if parent is None or parent.model_id not in models:
        return None
    weights = dict(parent.members)
    population = Population.of(templates, protocol.subjects, list(weights), SPLIT_SEED)
    before, after = models[parent.model_id], models[default.model_id]
    return {
        "before": parent.model_id,
        "after": default.model_id,
        "shipped": centre_metadata(centre_file_of(default)),
        "sweep": sweep_blends(population, weights, protocol.target_fmr),
        "rule": rule(
            before["verification"],
            after["verification"],
            before["identification"],
            after["identification"],
        ),
    }


def _probes(split: IdentificationSplit, labels: Labels) -> Probes:
    return Probes(
        np.array([i for _, i in split.mated], dtype=np.str_),
        np.array([i for _, i in split.nonmated], dtype=np.str_),
        labels,
    )


def analyse(
    root: Path,
    templates: Templates,
    configs: Sequence[FusionConfig],
    target_fmr: float = 1e-3,
    boot: stats.Bootstrap | None = None,
    plan: MitigationPlan | None = None,
) -> dict[str, Any]:
    """The whole analysis on templates already extracted for every LFW photo."""
    boot, plan = boot or stats.Bootstrap(), plan or MitigationPlan()
    labels = read_labels(root)
    images = read_lfw_images(root)
    split = lfw_identification(root)
    names = list(dict.fromkeys(n for c in configs for n in c.names))
    index = TemplateIndex.of(templates)
    subjects, skipped = build_subjects(images, labels, index)
    cohort = choose_cohort(images, split, index, plan.cohort_size, plan.seed)
    protocol = Protocol(
        search_scores(index, split, names),
        _probes(split, labels),
        index.rows([p for p, _ in split.mated + split.nonmated]),
        subjects,
        subjects.without(set(cohort)),
        index.rows([images[n][0] for n in cohort]),
        target_fmr,
        boot,
        plan,
    )
    models = {c.model_id: evaluate_model(protocol, templates, c) for c in configs}
    centred = centring(protocol, templates, configs[-1], models)
    pool = [c.names[0] for c in configs if len(c.members) == 1]
    in_cohort = subjects.without(set(subjects.names) - set(cohort))
    return {
        "model_id": configs[-1].model_id,
        "target_fmr": target_fmr,
        "target_fpir": TARGET_FPIR,
        "bootstrap": {"resamples": boot.resamples, "seed": boot.seed, "ci_level": stats.CI_LEVEL},
        "small_counts": {"min_people": stats.MIN_PEOPLE, "min_errors": stats.MIN_ERRORS},
        "labels": label_counts(subjects, skipped),
        "protocol": split.counts,
        "cohort": {
            "size": len(cohort),
            "seed": plan.seed,
            "methods": {name: k for name, k in plan.methods},
            "population": label_counts(protocol.population, {"cohort": len(cohort)}),
            "composition": label_counts(in_cohort, {}),
        },
        "models": models,
        "weighting": weighting(protocol, templates, pool, models[configs[-1].model_id]),
        **({"centring": centred} if centred else {}),
    }


def run_demographics(
    root: Path,
    model_id: str,
    cache: TemplateCache,
    target_fmr: float = 1e-3,
    boot: stats.Bootstrap | None = None,
    workers: int = 2,
    progress: Progress | None = None,
    pool: Sequence[str] = FUSION_POOL,
) -> dict[str, Any]:
    """Extract (or load from the cache) every LFW photo's templates, then :func:`analyse`.

    *pool* names the single models reported beside *model_id*; each one not yet in
    the template cache costs a pass over all 13,233 photos.
    """
    start = time.perf_counter()
    read_labels(root)  # refuse a folder without labels before any long work
    configs = model_configs(model_id, pool)
    names = list(dict.fromkeys(n for c in configs for n in c.names))
    unknown = [n for n in names if n not in EMBEDDERS]
    if unknown:
        raise InputError(f"unknown embedder(s): {', '.join(unknown)}")
    paths = sorted(p for photos in read_lfw_images(root).values() for p in photos)
    embedders = [EMBEDDERS[n]() for n in names]
    templates = extract(paths, embedders, cache, DetectionPolicy(), workers, progress)
    extracted = time.perf_counter()
    body = analyse(root, templates, configs, target_fmr, boot)
    body["pool"] = list(pool)
    body["timings_s"] = {
        "templates": extracted - start,
        "analysis": time.perf_counter() - extracted,
        "templates_computed": templates.computed,
    }
    return body
