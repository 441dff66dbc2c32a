"""Demographic differentials on LFW, the NIST IR 8280 way (``facelead eval demographics``).

Labels are read from ``metadata.csv`` for *grouping the results only*; no
score, threshold or template is ever computed from them. Groups: ``sex_afifi``
(F, M) for every person; ``race_usc`` for the people it labels, a person with
several race labels forming the group "multiple".

1:1, per model id:

* Each labelled person contributes one *reference* photo (their first with a
  face): "one image per person". Impostor comparisons are every pair of two
  different people's references, about 16 million pairs.
* One global threshold is set at the target FMR over that whole impostor set,
  as an agency sets one threshold for everybody.
* Per group, FMR counts the impostor pairs *within* the group, same sex (NIST
  IR 8280 compares demographically matched impostors, since cross-sex pairs
  almost never match); for race, same race label and same sex. The women's
  group alone holds about a million pairs, so FMR = 1e-3 rests on thousands of
  false matches. FNMR counts the genuine comparisons of the
  group's people: their reference photo against each of their other photos (a
  photo without a face is a non-match, as NIST counts a failure to acquire).

1:N: the LFW protocol of :func:`facelead.eval.protocol.lfw_identification`
with the threshold set at FPIR = 0.01 over all non-mated searches; per group,
FNIR at rank 1 and at that threshold (mated probes of the group's people) and
FPIR (non-mated probes of the group's people, searched against the whole
gallery). Rates, intervals and ratios: :mod:`facelead.eval.demographics_stats`.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facelead.biometrics.fusion import FusionConfig
from facelead.biometrics.normalise import CohortNorm
from facelead.errors import InputError
from facelead.eval import demographics_stats as stats
from facelead.eval import metrics
from facelead.eval.identification import ProbeOutcomes
from facelead.eval.scores import TemplateIndex
from facelead.eval.templates import NO_FACE, Templates

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

SEXES = ("F", "M")
MULTIPLE = "multiple"
"""Race group of a person labelled with more than one ``race_usc`` value."""
CURVE_POINTS = 60


@dataclass(frozen=True)
class Labels:
    """identity -> sex ("F", "M" or "" when unknown or conflicting) and race group ("")."""

    sex: dict[str, str]
    race: dict[str, str]


def race_group(value: str) -> str:
    labels = [part.strip() for part in value.split(",") if part.strip()]
    return "" if not labels else labels[0] if len(labels) == 1 else MULTIPLE


def read_labels(root: Path) -> Labels:
    """Per identity, the most frequent non-empty label over its rows (LFW repeats them)."""
    path = root / "metadata.csv"
    if not path.is_file():
        raise InputError(f"no such file: {path}", code="not_found")
    sexes: dict[str, Counter[str]] = {}
    races: dict[str, Counter[str]] = {}
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"identity", "sex_afifi"} <= set(reader.fieldnames):
            raise InputError(f"{path}: needs the columns identity and sex_afifi")
        for row in reader:
            name = row["identity"]
            sexes.setdefault(name, Counter())[(row.get("sex_afifi") or "").strip()] += 1
            races.setdefault(name, Counter())[race_group(row.get("race_usc") or "")] += 1

    def pick(counts: Counter[str]) -> str:
        known = [(n, value) for value, n in counts.items() if value]
        return max(known)[1] if known else ""

    sex = {name: pick(counts) for name, counts in sexes.items()}
    return Labels(
        {name: value if value in SEXES else "" for name, value in sex.items()},
        {name: pick(counts) for name, counts in races.items()},
    )


@dataclass(frozen=True)
class Subjects:
    """The people of the 1:1 analysis and their genuine comparisons (template rows)."""

    names: tuple[str, ...]
    reference: IntArray
    sex: NDArray[np.str_]
    race: NDArray[np.str_]
    genuine_person: IntArray
    genuine_first: IntArray
    genuine_second: IntArray
    genuine_ok: BoolArray

    def without(self, excluded: set[str]) -> Subjects:
        """The same analysis without some people (the normalisation cohort)."""
        keep = np.array([name not in excluded for name in self.names], dtype=bool)
        new_index = np.cumsum(keep) - 1
        pairs = keep[self.genuine_person]
        return Subjects(
            tuple(n for n, k in zip(self.names, keep, strict=True) if k),
            self.reference[keep],
            self.sex[keep],
            self.race[keep],
            new_index[self.genuine_person[pairs]],
            self.genuine_first[pairs],
            self.genuine_second[pairs],
            self.genuine_ok[pairs],
        )


def build_subjects(
    images: dict[str, list[Path]], labels: Labels, index: TemplateIndex
) -> tuple[Subjects, dict[str, int]]:
    """People with a sex label and a face in at least one photo; the others are counted."""
    status = index.templates.status
    names: list[str] = []
    reference: list[int] = []
    person: list[int] = []
    first: list[int] = []
    second: list[int] = []
    skipped = Counter[str]()
    for name, paths in images.items():
        if labels.sex.get(name, "") not in SEXES:
            skipped["no_sex_label"] += 1
            continue
        rows = index.rows(paths)
        faces = np.flatnonzero(status[rows] != NO_FACE)
        if faces.size == 0:
            skipped["no_face_in_any_photo"] += 1
            continue
        ref = int(rows[faces[0]])
        others = [int(r) for r in rows if r != ref]
        person += [len(names)] * len(others)
        first += [ref] * len(others)
        second += others
        names.append(name)
        reference.append(ref)
    second_arr = np.array(second, dtype=np.int64)
    subjects = Subjects(
        tuple(names),
        np.array(reference, dtype=np.int64),
        np.array([labels.sex[n] for n in names], dtype=np.str_),
        np.array([labels.race.get(n, "") for n in names], dtype=np.str_),
        np.array(person, dtype=np.int64),
        np.array(first, dtype=np.int64),
        second_arr,
        status[second_arr] != NO_FACE,
    )
    return subjects, dict(skipped)


def fused_templates(templates: Templates, config: FusionConfig) -> NDArray[np.float32]:
    """Every image's fused template (rows), as :func:`facelead.biometrics.fusion.fuse`
    builds one: members scaled by sqrt(weight) and concatenated. Zero rows: no face."""
    parts = [np.sqrt(w) * templates.matrix(name)[0] for name, w in config.members]
    return np.concatenate(parts, axis=1).astype(np.float32)


@dataclass(frozen=True)
class Scorer:
    """Comparison scores of template rows: raw inner products, or cohort-normalised."""

    templates: NDArray[np.float32]
    norm: CohortNorm | None = None

    def block(self, rows: IntArray) -> FloatArray:
        """All-against-all scores of *rows* (S-norm when normalised: 1:1 has no probe side)."""
        vectors = self.templates[rows]
        raw = (vectors @ vectors.T).astype(np.float64)
        if self.norm is None:
            return raw
        cohort = self.norm.cohort_scores(vectors)
        return self.norm.symmetric(raw, cohort, cohort)

    def pairs(self, first: IntArray, second: IntArray) -> FloatArray:
        a, b = self.templates[first], self.templates[second]
        raw: FloatArray = np.einsum("ij,ij->i", a, b).astype(np.float64)
        if self.norm is None:
            return raw
        za = self.norm.apply(raw[:, None], self.norm.cohort_scores(a))[:, 0]
        zb = self.norm.apply(raw[:, None], self.norm.cohort_scores(b))[:, 0]
        return 0.5 * (za + zb)


def _impostors(block: FloatArray, stratum: NDArray[np.str_]) -> tuple[BoolArray, FloatArray]:
    mask = np.triu(stratum[:, None] == stratum[None, :], 1)
    return mask, np.asarray(block[mask], dtype=np.float64)


def _groups(values: NDArray[np.str_]) -> list[str]:
    """Labelled groups, largest first (ties by name)."""
    counts = Counter(str(v) for v in values if v)
    return sorted(counts, key=lambda g: (-counts[g], g))


def _fmr_family(
    scores: FloatArray,
    subjects: Subjects,
    labels: NDArray[np.str_],
    threshold: float,
    key: str,
    boot: stats.Bootstrap,
) -> tuple[dict[str, stats.GroupRate], dict[str, FloatArray]]:
    """Per group: FMR at *threshold* over same-sex impostor pairs within the group.

    *scores* is the all-against-all matrix of every subject's reference template.
    """
    rates: dict[str, stats.GroupRate] = {}
    values: dict[str, FloatArray] = {}
    for group in _groups(labels):
        idx = np.flatnonzero(labels == group)
        block = scores[np.ix_(idx, idx)]
        mask, values[group] = _impostors(block, subjects.sex[idx])
        first, second = np.nonzero(mask & (block >= threshold))
        counts = boot.counts(f"{key}/{group}", idx.size)
        rates[group] = stats.impostor_rate(first, second, subjects.sex[idx], counts)
    return rates, values


def _fnmr_family(
    subjects: Subjects, match: BoolArray, labels: NDArray[np.str_], key: str, boot: stats.Bootstrap
) -> dict[str, stats.GroupRate]:
    trials = np.bincount(subjects.genuine_person, minlength=len(subjects.names))
    misses = np.bincount(subjects.genuine_person, weights=~match, minlength=len(subjects.names))
    rates = {}
    for group in _groups(labels):
        people = np.flatnonzero((labels == group) & (trials > 0))
        counts = boot.counts(f"{key}/{group}", people.size)
        rates[group] = stats.identity_rate(misses[people].astype(np.int64), trials[people], counts)
    return rates


def verification(
    scorer: Scorer, subjects: Subjects, target_fmr: float, boot: stats.Bootstrap
) -> dict[str, Any]:
    """1:1 differentials at one global threshold (module docstring)."""
    scores = scorer.block(subjects.reference)
    impostors = scores[np.triu_indices(len(subjects.names), 1)]
    threshold = metrics.threshold_at_fmr(impostors, target_fmr)
    genuine = scorer.pairs(subjects.genuine_first, subjects.genuine_second)
    match = subjects.genuine_ok & (genuine >= threshold)
    grid = np.linspace(np.quantile(impostors, 0.9), impostors.max(), CURVE_POINTS)
    body: dict[str, Any] = {
        "threshold": threshold,
        "impostor_comparisons": int(impostors.size),
        "fmr": float(np.mean(impostors >= threshold)),
        "genuine_comparisons": int(match.size),
        "fnmr": float(1.0 - np.mean(match)) if match.size else None,
        "curves": {"thresholds": [float(t) for t in grid]},
    }
    for family, labels in (("sex", subjects.sex), ("race", subjects.race)):
        fmr, within = _fmr_family(scores, subjects, labels, threshold, f"fmr/{family}", boot)
        fnmr = _fnmr_family(subjects, match, labels, f"fnmr/{family}", boot)
        body[family] = {"fmr": stats.compare(fmr), "fnmr": stats.compare(fnmr)}
        body["curves"][family] = {
            g: [stats.finite(x) for x in stats.fmr_curve(v, grid)] for g, v in within.items()
        }
        if family == "sex":
            point, interval = stats.ratio(fmr["F"], fmr["M"])
            body["women_men_fmr_ratio"] = _ratio_dict(point, interval)
    return body


def _ratio_dict(point: float, interval: tuple[float, float] | None) -> dict[str, Any]:
    ci = None if interval is None else [stats.finite(v) for v in interval]
    return {"ratio": stats.finite(point), "ci": ci}


def _per_identity(
    identities: NDArray[np.str_], errors: BoolArray, keep: BoolArray
) -> tuple[IntArray, IntArray]:
    names, inverse = np.unique(identities[keep], return_inverse=True)
    trials = np.bincount(inverse, minlength=names.size).astype(np.int64)
    misses = np.bincount(inverse, weights=errors[keep], minlength=names.size).astype(np.int64)
    return misses, trials


@dataclass(frozen=True)
class Probes:
    """Identity and groups of every mated and non-mated search of the 1:N protocol."""

    mated: NDArray[np.str_]
    nonmated: NDArray[np.str_]
    labels: Labels

    def family(self, which: str, identities: NDArray[np.str_]) -> NDArray[np.str_]:
        table = self.labels.sex if which == "sex" else self.labels.race
        return np.array([table.get(str(i), "") for i in identities], dtype=np.str_)


def identification(
    found: ProbeOutcomes, probes: Probes, target_fpir: float, boot: stats.Bootstrap
) -> dict[str, Any]:
    """1:N per group: FNIR at rank 1 and at the global FPIR threshold, and FPIR."""
    fnir_tail, threshold = metrics.fnir_at_fpir(
        found.ranks, found.mate_scores, found.nonmated_top, target_fpir
    )
    misses = {
        "fnir_rank1": found.ranks != 1,
        "fnir_at_fpir": ~((found.ranks != metrics.NOT_RETURNED) & (found.mate_scores >= threshold)),
    }
    false_positive = found.nonmated_top >= threshold
    body: dict[str, Any] = {
        "threshold": threshold,
        "target_fpir": target_fpir,
        "mated_searches": int(found.ranks.size),
        "nonmated_searches": int(found.nonmated_top.size),
        "fnir_rank1": metrics.fnir_at_rank(found.ranks, 1),
        "fnir_at_fpir": fnir_tail,
        "fpir": metrics.fpir(found.nonmated_top, threshold),
    }
    for family in ("sex", "race"):
        mated_groups = probes.family(family, probes.mated)
        nonmated_groups = probes.family(family, probes.nonmated)
        block: dict[str, Any] = {}
        for metric, miss in misses.items():
            block[metric] = stats.compare(
                _group_rates(probes.mated, mated_groups, miss, f"{metric}/{family}", boot)
            )
        block["fpir"] = stats.compare(
            _group_rates(probes.nonmated, nonmated_groups, false_positive, f"fpir/{family}", boot)
        )
        body[family] = block
    return body


def _group_rates(
    identities: NDArray[np.str_],
    groups: NDArray[np.str_],
    errors: BoolArray,
    key: str,
    boot: stats.Bootstrap,
) -> dict[str, stats.GroupRate]:
    rates = {}
    for group in _groups(groups):
        misses, trials = _per_identity(identities, errors, groups == group)
        counts = boot.counts(f"{key}/{group}", trials.size)
        rates[group] = stats.identity_rate(misses, trials, counts)
    return rates


def label_counts(subjects: Subjects, skipped: dict[str, int]) -> dict[str, Any]:
    """How many people each group holds in the 1:1 analysis, and who was left out."""
    return {
        "people": len(subjects.names),
        "sex": dict(Counter(str(s) for s in subjects.sex)),
        "race": {g: int(np.sum(subjects.race == g)) for g in _groups(subjects.race)},
        "race_unlabelled": int(np.sum(subjects.race == "")),
        "excluded": skipped,
    }
