"""Fitting a template centre: known means, and a centre that narrows a planted differential."""

from __future__ import annotations

import numpy as np
import pytest

from facelead.errors import InputError
from facelead.eval.centring import Population, fit_centres, sweep, women_men_ratio


def _population(seed: int = 3) -> Population:
    """Unit templates where every woman's shares one common direction and men share less:
    women's impostor pairs then score higher, as issue 9 measured on LFW."""
    rng = np.random.default_rng(seed)
    n, dim = 600, 32
    sex = np.array(["F"] * (n // 3) + ["M"] * (n - n // 3))
    common = np.zeros(dim)
    common[0] = 1.0
    strength = np.where(sex == "F", 2.2, 1.0)[:, None]
    raw = rng.normal(size=(n, dim)) + strength * common
    refs = (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32)
    half = rng.permutation(n) < n // 2
    return Population({"m": refs}, sex, half)


def test_fitted_centre_is_the_blend_of_the_two_means() -> None:
    pop = _population()
    everyone = np.ones(pop.sex.size, dtype=bool)
    refs = pop.references["m"]
    women, men = refs[pop.sex == "F"].mean(axis=0), refs[pop.sex == "M"].mean(axis=0)
    for blend in (0.0, 0.5, 1.0):
        expected = blend * women + (1 - blend) * men
        np.testing.assert_allclose(fit_centres(pop, blend, everyone)["m"], expected, atol=1e-6)


def test_a_centre_needs_both_groups() -> None:
    pop = _population()
    with pytest.raises(InputError) as info:
        fit_centres(pop, 0.5, pop.sex == "M")
    assert info.value.code == "no_labels"


def test_centring_towards_the_women_narrows_the_planted_differential() -> None:
    pop = _population()
    everyone = np.ones(pop.sex.size, dtype=bool)
    origin = {"m": np.zeros(32, np.float32)}
    before = women_men_ratio(pop, origin, {"m": 1.0}, everyone, 0.01)
    assert before > 2  # the planted differential is there
    ratios = [
        women_men_ratio(pop, fit_centres(pop, b, everyone), {"m": 1.0}, everyone, 0.01)
        for b in (0.0, 0.5, 1.0)
    ]
    assert ratios[0] > ratios[1] > ratios[2]
    assert abs(np.log(ratios[2])) < abs(np.log(before))


def test_sweep_chooses_on_one_half_and_reports_the_other() -> None:
    pop = _population()
    body = sweep(pop, {"m": 1.0}, 0.01, blends=(0.0, 0.5, 1.0))
    rows = body["points"]
    assert [r["blend"] for r in rows] == [0.0, 0.5, 1.0]
    best = min(rows, key=lambda r: abs(np.log(r["ratio_a_where_fitted"])))
    assert body["chosen"]["a"] == best["blend"]
    assert all(np.isfinite(r["ratio_a_other_half"]) for r in rows)
