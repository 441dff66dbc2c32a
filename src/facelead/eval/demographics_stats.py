"""Per-group error rates with bootstrap intervals over identities (NIST IR 8280 method).

Pure numpy, no I/O. Why a bootstrap over *identities* rather than a binomial
interval over comparisons: one person's comparisons are not independent (one
face takes part in thousands of impostor pairs, and one hard-to-match person
misses on every photo), so an interval that treats each comparison as a coin
toss would be far too narrow. Each resample draws the group's people with
replacement and recomputes the rate from the drawn people's comparisons; a
ratio between two groups is recomputed from their (independent) resamples.

Every figure keeps the counts it rests on, and a group with fewer than
:data:`MIN_PEOPLE` people or :data:`MIN_ERRORS` errors is marked *small*: its
rate is printed, but no conclusion is drawn from it.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from facelead.errors import InputError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

MIN_PEOPLE = 30
"""Fewer people than this: a group's rate says more about those few people than the group."""
MIN_ERRORS = 10
"""Fewer errors than this: even a Poisson 95% interval spans a factor of about four or more."""
CI_LEVEL = 0.95
PAIR_CHUNK = 4096


@dataclass(frozen=True)
class Bootstrap:
    """Seeded resampling plan; each group gets its own stream, derived from its key."""

    resamples: int = 1000
    seed: int = 8280

    def __post_init__(self) -> None:
        if self.resamples < 10:
            raise InputError("a bootstrap needs at least 10 resamples", field="resamples")

    def counts(self, key: str, n: int) -> IntArray:
        """resamples x n: how often each of *n* people is drawn in each resample.

        The stream depends on (seed, key) only, so a group's interval does not change
        when other groups are added or reordered.
        """
        rng = np.random.default_rng([self.seed, zlib.crc32(key.encode())])
        if n == 0:
            return np.zeros((self.resamples, 0), dtype=np.int64)
        draws = rng.integers(0, n, size=(self.resamples, n))
        draws += np.arange(self.resamples)[:, None] * n
        flat = np.bincount(draws.ravel(), minlength=self.resamples * n)
        return flat.reshape(self.resamples, n).astype(np.int64)


@dataclass(frozen=True)
class GroupRate:
    """One group's error rate: counts, point estimate and its bootstrap replicates."""

    people: int
    comparisons: int
    errors: int
    resampled: FloatArray

    @property
    def rate(self) -> float:
        return self.errors / self.comparisons if self.comparisons else math.nan

    @property
    def small(self) -> bool:
        return self.people < MIN_PEOPLE or self.errors < MIN_ERRORS

    def interval(self) -> tuple[float, float] | None:
        return percentile_interval(self.resampled)

    def as_dict(self) -> dict[str, Any]:
        return {
            "people": self.people,
            "comparisons": self.comparisons,
            "errors": self.errors,
            "rate": finite(self.rate),
            "ci": _pair(self.interval()),
            "small": self.small,
        }


def finite(value: float) -> float | None:
    """JSON has no NaN or infinity: an undefined or unbounded value becomes null."""
    return float(value) if math.isfinite(value) else None


def _pair(interval: tuple[float, float] | None) -> list[float | None] | None:
    return None if interval is None else [finite(interval[0]), finite(interval[1])]


def percentile_interval(values: ArrayLike) -> tuple[float, float] | None:
    """Central CI_LEVEL percentile interval of the defined (non-NaN) replicates.

    A replicate is undefined (NaN) when a resample has no comparisons, or for a ratio
    when both rates are zero; it is dropped. An infinite ratio (reference rate zero in
    that resample) is kept: it makes the upper end unbounded, honestly.
    """
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return None
    tail = 100 * (1 - CI_LEVEL) / 2
    # No interpolation (a ratio replicate may be infinite), rounded outwards: conservative.
    low = np.percentile(arr, tail, method="lower")
    high = np.percentile(arr, 100 - tail, method="higher")
    return float(low), float(high)


def identity_rate(errors: ArrayLike, trials: ArrayLike, counts: IntArray) -> GroupRate:
    """A rate over comparisons that each belong to one person (FNMR, FNIR, FPIR).

    ``errors[i]`` and ``trials[i]`` are person i's errors and comparisons; a
    resample's rate is sum(c_i * errors_i) / sum(c_i * trials_i).
    """
    err = np.asarray(errors, dtype=np.int64)
    n = np.asarray(trials, dtype=np.int64)
    if err.shape != n.shape or err.ndim != 1 or (err < 0).any() or (err > n).any():
        raise InputError("errors and trials: one entry per person, 0 <= errors <= trials")
    if counts.shape[1] != n.size:
        raise InputError("resample counts need one column per person")
    with np.errstate(divide="ignore", invalid="ignore"):
        resampled = (counts @ err) / (counts @ n)
    return GroupRate(int(n.size), int(n.sum()), int(err.sum()), resampled.astype(np.float64))


def same_stratum_pairs(stratum: ArrayLike) -> int:
    """How many unordered pairs of people share a stratum (e.g. a sex)."""
    _, sizes = np.unique(np.asarray(stratum), return_counts=True)
    return int(np.sum(sizes * (sizes - 1) // 2))


def impostor_rate(
    false_first: ArrayLike, false_second: ArrayLike, stratum: ArrayLike, counts: IntArray
) -> GroupRate:
    """FMR over *every* same-stratum pair of a group's people (one template each).

    Only the false matches are passed, as (first, second) person indices, because
    the design is complete: the comparisons are all same-stratum pairs, so their
    number, and in a resample the number of pairs between distinct drawn copies,
    follow from the counts alone. A person drawn c_i times and one drawn c_j times
    give c_i * c_j pairs; copies of one person are never paired (not impostors).
    """
    first = np.asarray(false_first, dtype=np.int64)
    second = np.asarray(false_second, dtype=np.int64)
    strata = np.asarray(stratum)
    n = strata.size
    if first.shape != second.shape or counts.shape[1] != n:
        raise InputError("false matches and resample counts must index the group's people")
    if first.size and (min(first.min(), second.min()) < 0 or max(first.max(), second.max()) >= n):
        raise InputError("a false match names a person outside the group")
    if first.size and (strata[first] != strata[second]).any():
        raise InputError("a false match pairs people of different strata")
    matches = np.zeros(counts.shape[0], dtype=np.float64)
    for start in range(0, first.size, PAIR_CHUNK):
        i, j = first[start : start + PAIR_CHUNK], second[start : start + PAIR_CHUNK]
        matches += np.sum(counts[:, i] * counts[:, j], axis=1)
    pairs = np.zeros(counts.shape[0], dtype=np.float64)
    for value in np.unique(strata):
        block = counts[:, strata == value]
        pairs += (block.sum(axis=1) ** 2 - (block**2).sum(axis=1)) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        resampled = matches / pairs
    return GroupRate(n, same_stratum_pairs(strata), int(first.size), resampled)


def reference_group(rates: Mapping[str, GroupRate]) -> str | None:
    """The lowest-rate group among those large enough to conclude from (else among any
    group with an error), so that ratios are never taken to a rate resting on 0-9 errors
    when a better-measured group exists."""
    for candidates in (
        [k for k, r in rates.items() if not r.small],
        [k for k, r in rates.items() if r.errors > 0],
    ):
        if candidates:
            return min(candidates, key=lambda k: (rates[k].rate, k))
    return None


def ratio(group: GroupRate, reference: GroupRate) -> tuple[float, tuple[float, float] | None]:
    """(point ratio, 95% bootstrap interval) of group rate / reference rate."""
    point = group.rate / reference.rate if reference.rate > 0 else math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        replicates = group.resampled / reference.resampled
    return point, percentile_interval(replicates)


def verdict(group: GroupRate, reference: GroupRate, interval: tuple[float, float] | None) -> str:
    """What may be concluded about one group's ratio to the reference group."""
    if group is reference:
        return "reference"
    if group.small or reference.small or interval is None:
        return "too few to conclude"
    if interval[0] > 1.0:
        return "higher (95% CI excludes 1)"
    return "no clear difference (95% CI includes 1)"


def compare(rates: Mapping[str, GroupRate]) -> dict[str, Any]:
    """JSON block: each group's rate and counts, its ratio to the lowest group, a verdict."""
    ref = reference_group(rates)
    groups: dict[str, Any] = {}
    for name, rate in rates.items():
        entry = rate.as_dict()
        if ref is None:
            entry.update(ratio=None, ratio_ci=None, verdict="too few to conclude")
        else:
            point, interval = ratio(rate, rates[ref])
            entry.update(
                ratio=finite(point),
                ratio_ci=_pair(interval),
                verdict=verdict(rate, rates[ref], interval),
            )
        groups[name] = entry
    return {"reference": ref, "groups": groups}


def fmr_curve(scores: ArrayLike, thresholds: ArrayLike) -> list[float]:
    """Fraction of *scores* at or above each threshold (FMR, or FPIR on top scores)."""
    values = np.sort(np.asarray(scores, dtype=np.float64))
    if values.size == 0:
        return [math.nan] * len(np.asarray(thresholds))
    above = values.size - np.searchsorted(values, np.asarray(thresholds), side="left")
    return [float(x) for x in above / values.size]
