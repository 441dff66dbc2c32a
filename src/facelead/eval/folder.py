"""``facelead eval folder``: the LFW 1:N protocol on an agency's own labelled photos.

NIST and the BJA policy template both ask an agency to check a face search on
its own images before use. The CSV names each photo's identity; the gallery is
the first photo of each identity (sorted by path), the other photos are mated
probes, and non-mated searches are the mated probes searched with their own
identity left out (see :func:`facelead.eval.protocol.folder_identification`).

1:1 figures come from every pair of the CSV's photos: all mated pairs, and as
many seeded random non-mated pairs (a balanced set like LFW's), in folds by
identity so the threshold is never chosen on the identities being scored. TAR @
FMR=1e-3 uses every non-mated pair. Optional extra columns (sex, age group...)
are never used for matching; they break FNIR down per group, with Wilson 95%
intervals, so demographic differentials are visible (NIST IR 8280).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facelead.biometrics.embed import EMBEDDERS
from facelead.biometrics.fusion import model_config
from facelead.eval import metrics
from facelead.eval.cache import TemplateCache
from facelead.eval.identification import NO_CANDIDATE, outcomes, summarise
from facelead.eval.protocol import folder_identification, read_labelled_csv
from facelead.eval.scores import TemplateIndex, acquisition_counts, quality_counts, search_scores
from facelead.eval.templates import DetectionPolicy, Progress, extract

PAIR_SEED = 19795
MAX_FOLDS = 10


def _pairs(
    identities: Sequence[str],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
    """Every unordered pair of photos: first index, second index, mated."""
    n = len(identities)
    first, second = np.triu_indices(n, 1)
    labels = np.array(identities)
    return first.astype(np.int64), second.astype(np.int64), labels[first] == labels[second]


def folder_verification(
    fused: NDArray[np.float32], ok: NDArray[np.bool_], identities: Sequence[str]
) -> dict[str, Any] | None:
    """Balanced k-fold 1:1 accuracy and TAR @ FMR=1e-3 over all pairs (None if too few)."""
    first, second, mated = _pairs(identities)
    multi = sorted({identities[i] for i in first[mated]})
    if len(multi) < 2:
        return None
    scores = np.where(ok[first] & ok[second], fused[first, second], NO_CANDIDATE)
    rng = np.random.default_rng(PAIR_SEED)
    impostors = np.flatnonzero(~mated)
    chosen = np.sort(
        rng.choice(impostors, size=min(impostors.size, int(mated.sum())), replace=False)
    )
    keep = np.sort(np.concatenate([np.flatnonzero(mated), chosen]))
    folds = min(MAX_FOLDS, len(multi))
    fold_of = {name: i % folds for i, name in enumerate(multi)}
    order = {name: i for i, name in enumerate(sorted(set(identities)))}
    fold = np.array([fold_of.get(identities[i], order[identities[i]] % folds) for i in first[keep]])
    result = asdict(metrics.kfold_verification(scores[keep], mated[keep], fold))
    tar, threshold = metrics.tar_at_fmr(scores[mated], scores[~mated], 1e-3)
    result.update(tar_at_target_fmr=tar, threshold_at_target_fmr=threshold)
    result["n_impostor_all_pairs"] = int((~mated).sum())
    return result


def demographic_breakdown(
    rows: Sequence[dict[str, str]], probes: Sequence[Path], ranks: NDArray[np.int64]
) -> dict[str, dict[str, Any]]:
    """FNIR at rank 1 per value of every extra CSV column, with Wilson 95% intervals."""
    by_path = {Path(row["path"]): row for row in rows}
    columns = [c for c in rows[0] if c not in ("path", "identity")] if rows else []
    out: dict[str, dict[str, Any]] = {}
    for column in columns:
        misses: dict[str, list[bool]] = defaultdict(list)
        for path, rank in zip(probes, ranks, strict=True):
            value = (by_path[path].get(column) or "").strip() or "(blank)"
            misses[value].append(int(rank) != 1)
        out[column] = {
            value: {
                "mated_probes": len(flags),
                "fnir_rank1": sum(flags) / len(flags),
                "fnir_rank1_ci95": list(metrics.wilson_interval(sum(flags), len(flags))),
            }
            for value, flags in sorted(misses.items())
        }
    return out


def run_folder(
    csv_path: Path,
    model_id: str,
    cache: TemplateCache,
    distractors: Path | None = None,
    workers: int = 2,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The 1:N (and balanced 1:1) measurement of *model_id* on a labelled CSV."""
    split = folder_identification(csv_path, distractors)
    rows = read_labelled_csv(csv_path)
    config = model_config(model_id)
    weights = dict(config.members)
    labelled = [p for p, _ in split.gallery + split.mated]
    paths = list(dict.fromkeys(labelled + list(split.distractors)))
    embedders = [EMBEDDERS[name]() for name in config.names]
    templates = extract(paths, embedders, cache, DetectionPolicy(), workers, progress)
    index = TemplateIndex.of(templates)
    search = search_scores(index, split, config.names)
    found = outcomes(search, search.fused(weights))
    ident = summarise(found).as_dict()
    identities = [i for _, i in split.gallery + split.mated]
    rows_of = index.rows(labelled)
    fused = np.zeros((len(labelled), len(labelled)), dtype=np.float32)
    for name, weight in weights.items():
        vectors = templates.matrix(name)[0][rows_of]
        fused += np.float32(weight) * (vectors @ vectors.T)
    verification = folder_verification(fused, index.has_face(labelled), identities)
    return {
        "model_id": model_id,
        "verification_accuracy": None if verification is None else verification["mean_accuracy"],
        "tar_at_fmr_1e-3": None if verification is None else verification["tar_at_target_fmr"],
        "fnir_rank1": ident["fnir_at_rank"]["1"],
        "fnir_at_fpir_0.01": ident["fnir_at_fpir"]["0.01"],
        "fnir_at_fpir_0.003": ident["fnir_at_fpir"]["0.003"],
        "models": {
            model_id: {
                "members": [list(m) for m in config.members],
                "verification": verification,
                "identification": ident,
            }
        },
        "demographics": demographic_breakdown(rows, [p for p, _ in split.mated], found.ranks),
        "counts": {
            "protocol": split.counts,
            "nonmated_searches": "mate removed (each mated probe, own identity left out)",
            "acquisition": acquisition_counts(index, split),
            "quality_gate_would_flag": quality_counts(index, [p for p, _ in split.mated]),
            "templates_computed": templates.computed,
        },
    }
