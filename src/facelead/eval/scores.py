"""From cached templates to per-model score arrays for a protocol's comparisons."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from facelead.eval.identification import MATE_ABSENT, NO_CANDIDATE, SearchScores
from facelead.eval.protocol import IdentificationSplit, Pair
from facelead.eval.templates import FOUND_ON_RETRY, NO_FACE, QUALITY_CHECKS, Templates


@dataclass(frozen=True)
class TemplateIndex:
    """Row of each path in a :class:`Templates` and which rows have a face."""

    templates: Templates
    row: dict[Path, int]

    @classmethod
    def of(cls, templates: Templates) -> TemplateIndex:
        return cls(templates, {path: i for i, path in enumerate(templates.paths)})

    def rows(self, paths: Sequence[Path]) -> NDArray[np.int64]:
        return np.array([self.row[p] for p in paths], dtype=np.int64)

    def has_face(self, paths: Sequence[Path]) -> NDArray[np.bool_]:
        status = self.templates.status
        return np.asarray(status[self.rows(paths)] != NO_FACE)


def pair_scores(index: TemplateIndex, pairs: Sequence[Pair], name: str) -> NDArray[np.float64]:
    """Cosine per pair; a pair with a face missing on either side scores NO_CANDIDATE
    (it can never match: an acquisition failure is a non-match, as NIST counts it).
    """
    vectors, ok = index.templates.matrix(name)
    first = index.rows([p.first for p in pairs])
    second = index.rows([p.second for p in pairs])
    cosine = np.einsum("ij,ij->i", vectors[first], vectors[second]).astype(np.float64)
    return np.where(ok[first] & ok[second], cosine, NO_CANDIDATE)


def search_scores(
    index: TemplateIndex, split: IdentificationSplit, names: Sequence[str]
) -> SearchScores:
    """Probe x enrolled-subject cosine matrices; failed gallery images are not enrolled."""
    gallery_paths = [p for p, _ in split.gallery] + list(split.distractors)
    gallery_ids = [i for _, i in split.gallery] + [
        f"\0distractor{n}" for n in range(len(split.distractors))
    ]
    enrolled = index.has_face(gallery_paths)
    columns = {identity: c for c, identity in enumerate(np.array(gallery_ids)[enrolled])}
    known = {identity for _, identity in split.gallery}
    probes = list(split.mated) + list(split.nonmated)
    mate = np.array(
        [columns.get(i, MATE_ABSENT) if i in known else -1 for _, i in probes], dtype=np.int64
    )
    probe_rows = index.rows([p for p, _ in probes])
    gallery_rows = index.rows(gallery_paths)[enrolled]
    matrices = {}
    for name in names:
        vectors, _ = index.templates.matrix(name)
        matrices[name] = vectors[probe_rows] @ vectors[gallery_rows].T
    probe_ok = index.has_face([p for p, _ in probes])
    return SearchScores(matrices, mate, probe_ok, split.mate_removed)


def acquisition_counts(index: TemplateIndex, split: IdentificationSplit) -> dict[str, int]:
    """Failures to enrol (gallery) and to acquire (probes), and faces found only on retry."""
    status = index.templates.status
    gallery = index.rows([p for p, _ in split.gallery] + list(split.distractors))
    mated = index.rows([p for p, _ in split.mated])
    nonmated = index.rows([p for p, _ in split.nonmated])
    every = index.rows(index.templates.paths)
    return {
        "gallery_fte": int(np.sum(status[gallery] == NO_FACE)),
        "mated_probe_fta": int(np.sum(status[mated] == NO_FACE)),
        "nonmated_probe_fta": int(np.sum(status[nonmated] == NO_FACE)),
        "images": len(every),
        "found_on_retry": int(np.sum(status[every] == FOUND_ON_RETRY)),
    }


def quality_counts(index: TemplateIndex, paths: Sequence[Path]) -> dict[str, int]:
    """How many of *paths* the production quality gate would have flagged, per measure.

    Evaluation searches every probe (NIST does); this says how many would have been
    refused in production, so the accuracy can be read next to that refusal rate.
    """
    rows = index.rows(paths)
    masks = index.templates.quality[rows]
    has_face = index.templates.status[rows] != NO_FACE
    counts = {
        name: int(np.sum(has_face & ((masks >> i) & 1).astype(bool)))
        for i, name in enumerate(QUALITY_CHECKS)
    }
    counts["any"] = int(np.sum(has_face & (masks != 0)))
    counts["of"] = int(np.sum(has_face))
    return counts
