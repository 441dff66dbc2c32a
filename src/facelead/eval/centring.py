"""Fitting a template centre (biometrics/centre.py) and measuring it on held-out people.

The centre of member model m is ``blend * mean_F(m) + (1 - blend) * mean_M(m)``:
the mean reference template of the labelled women and of the labelled men.
``blend`` = share of women in the set gives the plain mean of everyone; a larger
blend moves the centre towards the women's templates, so it removes more of the
component that women's templates share, and their impostor scores fall.

The blend is the one parameter fitted with demographic labels, so it is chosen
on one seeded half of the people (centre from that half, women/men FMR ratio of
that half's same-sex impostor pairs, closest to parity) and measured on the
other half (same centre, the other half's pairs); the reverse direction is
reported as well. The shipped centre uses that blend and all labelled people.
Its 1:N accuracy and every differential are then measured like any model's by
``facelead eval lfw`` and ``facelead eval demographics``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facelead.biometrics.centre import CentreFile, centred_rows, write_centres
from facelead.biometrics.embed import EMBEDDERS, CentredEmbedder
from facelead.biometrics.fusion import MODEL_CONFIGS, FusionConfig, model_config
from facelead.errors import InputError
from facelead.eval import metrics
from facelead.eval.cache import TemplateCache
from facelead.eval.demographics import Subjects, build_subjects, read_labels
from facelead.eval.demographics_stats import finite
from facelead.eval.protocol import read_lfw_images
from facelead.eval.scores import TemplateIndex
from facelead.eval.templates import DetectionPolicy, Progress, Templates, extract

Centres = dict[str, NDArray[np.float32]]
BLENDS = tuple(round(0.1 * i, 1) for i in range(13))
SPLIT_SEED = 8280


@dataclass(frozen=True)
class Population:
    """Each member's reference templates of the labelled people, and who is who."""

    references: dict[str, NDArray[np.float32]]
    sex: NDArray[np.str_]
    half: NDArray[np.bool_]

    @classmethod
    def of(
        cls, templates: Templates, subjects: Subjects, names: Sequence[str], seed: int
    ) -> Population:
        n = len(subjects.names)
        half = np.random.default_rng(seed).permutation(n) < n // 2
        refs = {name: templates.matrix(name)[0][subjects.reference] for name in names}
        return cls(refs, subjects.sex, half)


def fit_centres(population: Population, blend: float, people: NDArray[np.bool_]) -> Centres:
    """Blended women's and men's mean reference template per member, over *people*."""
    women, men = people & (population.sex == "F"), people & (population.sex == "M")
    if not women.any() or not men.any():
        raise InputError("fitting a centre needs labelled women and men", code="no_labels")
    return {
        name: (blend * refs[women].mean(axis=0) + (1 - blend) * refs[men].mean(axis=0)).astype(
            np.float32
        )
        for name, refs in population.references.items()
    }


def women_men_ratio(
    population: Population,
    centres: Centres,
    weights: dict[str, float],
    people: NDArray[np.bool_],
    target_fmr: float,
) -> float:
    """Women/men FMR at one threshold (FMR *target_fmr* over all pairs of *people*)."""
    rows = np.flatnonzero(people)
    i, j = np.triu_indices(rows.size, 1)
    scores = np.zeros(i.size, dtype=np.float64)
    for name, weight in weights.items():
        vectors = centred_rows(population.references[name][rows], centres[name])
        scores += weight * (vectors @ vectors.T)[i, j]
    sex = population.sex[rows]
    same = np.where(sex[i] == sex[j], sex[i], "")
    above = scores >= metrics.threshold_at_fmr(scores, target_fmr)
    fmr_m = float(np.mean(above[same == "M"]))
    return float(np.mean(above[same == "F"])) / fmr_m if fmr_m else float("nan")


def _parity_distance(ratio: float | None) -> float:
    """|log ratio|; a ratio that could not be measured (None, 0) is never chosen."""
    return abs(float(np.log(ratio))) if ratio else float("inf")


def sweep(
    population: Population,
    weights: dict[str, float],
    target_fmr: float,
    blends: Sequence[float] = BLENDS,
) -> dict[str, Any]:
    """Every blend's ratio where chosen and on the other half, in both directions."""
    rows = []
    for blend in blends:
        row: dict[str, Any] = {"blend": blend}
        for label, fit_on in (("a", population.half), ("b", ~population.half)):
            centres = fit_centres(population, blend, fit_on)
            row[f"ratio_{label}_where_fitted"] = finite(
                women_men_ratio(population, centres, weights, fit_on, target_fmr)
            )
            row[f"ratio_{label}_other_half"] = finite(
                women_men_ratio(population, centres, weights, ~fit_on, target_fmr)
            )
        rows.append(row)
    chosen = {
        label: min(rows, key=lambda r: _parity_distance(r[f"ratio_{label}_where_fitted"]))["blend"]
        for label in ("a", "b")
    }
    return {"weights": weights, "target_fmr": target_fmr, "points": rows, "chosen": chosen}


def member_bases(model_id: str) -> dict[str, float]:
    """Base embedder name -> weight, for a model whose members are centred embedders."""
    parent = uncentred(model_config(model_id))
    if parent is None:
        raise InputError(f"{model_id}: a member has no centre", code="not_centred")
    return dict(parent.members)


def lfw_population(
    root: Path,
    names: Sequence[str],
    cache: TemplateCache,
    workers: int = 2,
    progress: Progress | None = None,
) -> tuple[Templates, Population]:
    """Every LFW photo's templates under the embedders *names* (through the cache), and
    the sex-labelled people's reference templates with the seeded halves."""
    labels = read_labels(root)  # refuse a folder without labels before any long work
    images = read_lfw_images(root)
    paths = sorted(p for photos in images.values() for p in photos)
    embedders = [EMBEDDERS[name]() for name in names]
    templates = extract(paths, embedders, cache, DetectionPolicy(), workers, progress)
    subjects, _ = build_subjects(images, labels, TemplateIndex.of(templates))
    return templates, Population.of(templates, subjects, names, SPLIT_SEED)


def run_centre(
    root: Path,
    model_id: str,
    cache: TemplateCache,
    out: Path,
    blend: float | None = None,
    workers: int = 2,
    progress: Progress | None = None,
    target_fmr: float = 1e-3,
) -> dict[str, Any]:
    """Sweep the blend on LFW's labelled people, then write the centre file to *out*."""
    weights = member_bases(model_id)
    _, population = lfw_population(root, list(weights), cache, workers, progress)
    body = sweep(population, weights, target_fmr)
    chosen = body["chosen"]["a"] if blend is None else blend
    everyone = np.ones(population.sex.size, dtype=bool)
    centres = fit_centres(population, chosen, everyone)
    meta = {
        "blend": chosen,
        "women": float(np.sum(population.sex == "F")),
        "men": float(np.sum(population.sex == "M")),
    }
    body |= {"blend": chosen, "model_id": model_id, "people": meta, "file": str(out)}
    body["sha256"] = write_centres(out, centres, meta)
    return body


def uncentred(config: FusionConfig) -> FusionConfig | None:
    """*config*'s weights on the base members: the *before* of the centring (fusion-v4 ->
    the registered fusion-v3; otherwise an unregistered ``<id>-uncentred`` for the report).
    None if *config* has a member without a centre."""
    members = []
    for name, weight in config.members:
        embedder = EMBEDDERS[name]()
        if not isinstance(embedder, CentredEmbedder):
            return None
        members.append((embedder.base.name, weight))
    registered = (c for c in MODEL_CONFIGS.values() if list(c.members) == members)
    return next(registered, FusionConfig(f"{config.model_id}-uncentred", tuple(members)))


def centre_file_of(config: FusionConfig) -> CentreFile:
    embedder = EMBEDDERS[config.members[0][0]]()
    if not isinstance(embedder, CentredEmbedder):
        raise InputError(f"{config.model_id} has no centred member", code="not_centred")
    return embedder.centre_file
