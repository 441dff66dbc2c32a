"""Demographic differentials (NIST IR 8280 method) and the cohort normaliser.

Known answers come from hand-made score sets and templates; real LFW labels are
only read (no models) and skipped where ../shared/data is absent.
"""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray
from typer.testing import CliRunner

from facelead.biometrics.centre import centred
from facelead.biometrics.normalise import CohortNorm
from facelead.errors import InputError
from facelead.eval import demographics_stats as stats
from facelead.eval.demographics import (
    Labels,
    Scorer,
    build_subjects,
    race_group,
    read_labels,
    verification,
)
from facelead.eval.demographics_mitigation_doc import candidates
from facelead.eval.demographics_report import write_fairness
from facelead.eval.demographics_run import MitigationPlan, analyse, model_configs
from facelead.eval.scores import TemplateIndex
from facelead.eval.templates import FOUND, NO_FACE, Templates, face_fields

# --------------------------------------------------------------------------- rates


def test_impostor_rate_counts_every_same_stratum_pair() -> None:
    counts = np.array([[1, 1, 1, 1], [2, 1, 0, 1]])
    rate = stats.impostor_rate([0, 2], [1, 3], ["F"] * 4, counts)
    assert (rate.people, rate.comparisons, rate.errors) == (4, 6, 2)
    assert rate.rate == pytest.approx(2 / 6)
    # Resample 2 draws person 0 twice: pairs between distinct copies = (16 - 6) / 2 = 5,
    # of which the false match (0, 1) appears 2 x 1 times and (2, 3) never.
    assert rate.resampled == pytest.approx([2 / 6, 2 / 5])


def test_impostor_rate_never_pairs_across_strata() -> None:
    counts = np.ones((1, 4), dtype=np.int64)
    rate = stats.impostor_rate([0], [1], ["F", "F", "M", "M"], counts)
    assert rate.comparisons == 2 and rate.rate == pytest.approx(0.5)
    with pytest.raises(InputError):
        stats.impostor_rate([0], [2], ["F", "F", "M", "M"], counts)


def test_identity_rate_weights_people_by_their_comparisons() -> None:
    counts = np.array([[1, 1, 1], [0, 0, 2]])
    rate = stats.identity_rate([1, 0, 3], [2, 2, 3], counts)
    assert rate.rate == pytest.approx(4 / 7)
    assert rate.resampled == pytest.approx([4 / 7, 1.0])
    with pytest.raises(InputError):
        stats.identity_rate([3], [2], np.ones((1, 1), dtype=np.int64))


def _uniform_group(
    boot: stats.Bootstrap, key: str, people: int, each: int, errors: int
) -> stats.GroupRate:
    """*people* people with *each* comparisons; the first *errors* people err once."""
    wrong = np.zeros(people, dtype=np.int64)
    wrong[:errors] = 1
    trials = np.full(people, each, dtype=np.int64)
    return stats.identity_rate(wrong, trials, boot.counts(key, people))


def test_ratio_to_the_lowest_group_with_bootstrap_interval() -> None:
    boot = stats.Bootstrap(resamples=500, seed=1)
    rates = {
        "a": _uniform_group(boot, "a", 400, 10, 80),
        "b": _uniform_group(boot, "b", 400, 10, 20),
    }
    block = stats.compare(rates)
    assert block["reference"] == "b"
    a = block["groups"]["a"]
    assert a["rate"] == pytest.approx(0.02) and a["ratio"] == pytest.approx(4.0)
    assert a["ratio_ci"][0] < 4.0 < a["ratio_ci"][1]
    assert a["verdict"].startswith("higher")
    assert block["groups"]["b"]["verdict"] == "reference"
    assert (a["people"], a["comparisons"], a["errors"]) == (400, 4000, 80)


def test_bootstrap_interval_contains_the_estimate_and_is_reproducible() -> None:
    boot = stats.Bootstrap(resamples=300, seed=7)
    first = _uniform_group(boot, "g", 200, 5, 30)
    again = _uniform_group(boot, "g", 200, 5, 30)
    low, high = first.interval() or (math.nan, math.nan)
    assert low < first.rate < high
    assert np.array_equal(first.resampled, again.resampled)
    other = _uniform_group(stats.Bootstrap(resamples=300, seed=8), "g", 200, 5, 30)
    assert not np.array_equal(first.resampled, other.resampled)
    counts = boot.counts("g", 200)
    assert counts.shape == (300, 200) and (counts.sum(axis=1) == 200).all()


def test_small_counts_are_flagged_and_not_concluded_from() -> None:
    boot = stats.Bootstrap(resamples=200, seed=3)
    rates = {
        "big": _uniform_group(boot, "big", 500, 10, 50),
        "few people": _uniform_group(boot, "few", stats.MIN_PEOPLE - 1, 100, 20),
        "few errors": _uniform_group(boot, "fe", 500, 10, stats.MIN_ERRORS - 1),
    }
    block = stats.compare(rates)
    assert block["reference"] == "big"  # the lowest rate, "few errors", is too small
    for name in ("few people", "few errors"):
        assert block["groups"][name]["small"] is True
        assert block["groups"][name]["verdict"] == "too few to conclude"
    assert block["groups"]["big"]["small"] is False


def test_bootstrap_refuses_too_few_resamples() -> None:
    with pytest.raises(InputError):
        stats.Bootstrap(resamples=5)


# --------------------------------------------------------------------------- 1:1 on templates


def _templates(root: Path, people: dict[str, list[float]], names: tuple[str, ...]) -> Templates:
    """One photo per angle (degrees) per person; every model sees the same 2-D unit vector."""
    paths, vectors = [], []
    for person, angles in people.items():
        for n, angle in enumerate(angles, start=1):
            paths.append(root / "images" / person / f"{person}_{n:04d}.jpg")
            rad = math.radians(angle)
            vectors.append(np.array([math.cos(rad), math.sin(rad)], dtype=np.float32))
    faces = [face_fields(FOUND, None, 0) for _ in paths]
    rows: list[np.ndarray | None] = list(vectors)
    return Templates(
        paths, [f"{i:064x}" for i in range(len(paths))], faces, {n: list(rows) for n in names}
    )


def _images(templates: Templates) -> dict[str, list[Path]]:
    images: dict[str, list[Path]] = {}
    for path in templates.paths:
        images.setdefault(path.parent.name, []).append(path)
    return images


def test_verification_groups_on_hand_made_templates(tmp_path: Path) -> None:
    # Women's references at 0..30 degrees (look alike), men's 60 degrees apart.
    # Second photos: women +5 degrees, men +30 (match), but m3's at 80 degrees (no match).
    people = {f"f{i}": [10.0 * i, 10.0 * i + 5] for i in range(4)}
    people |= {f"m{i}": [90.0 + 60 * i, 120.0 + 60 * i] for i in range(3)}
    people["m3"] = [270.0, 80.0]
    templates = _templates(tmp_path, people, ("m",))
    sex = {name: name[0].upper() for name in people}
    race = {"f0": "a", "f1": "a", "m0": "a", "m1": "a"}
    subjects, skipped = build_subjects(
        _images(templates), Labels(sex, race), TemplateIndex.of(templates)
    )
    assert skipped == {}
    scorer = Scorer(np.stack([v for v in templates.vectors["m"] if v is not None]))
    body = verification(scorer, subjects, 10.5 / 28, stats.Bootstrap(resamples=50))
    # 28 impostor pairs, 10 may match: the 6 F-F pairs (cos 10..30 degrees) and the four
    # at cos 60 (3 M-M, 1 cross-sex); the threshold sits just above cos 70 degrees.
    assert body["impostor_comparisons"] == 28
    assert body["threshold"] == pytest.approx(math.cos(math.radians(70)), abs=1e-6)
    fmr = body["sex"]["fmr"]["groups"]
    assert (fmr["F"]["rate"], fmr["F"]["comparisons"], fmr["F"]["errors"]) == (1.0, 6, 6)
    assert (fmr["M"]["rate"], fmr["M"]["comparisons"], fmr["M"]["errors"]) == (0.5, 6, 3)
    assert body["sex"]["fmr"]["reference"] == "M"
    assert fmr["F"]["ratio"] == pytest.approx(2.0)
    assert fmr["F"]["verdict"] == "too few to conclude"
    assert body["women_men_fmr_ratio"]["ratio"] == pytest.approx(2.0)
    fnmr = body["sex"]["fnmr"]["groups"]
    assert fnmr["F"]["rate"] == 0.0 and fnmr["M"]["rate"] == pytest.approx(0.25)
    assert fnmr["M"]["comparisons"] == 4 and fnmr["M"]["people"] == 4
    race_fmr = body["race"]["fmr"]["groups"]["a"]  # pairs (f0, f1) and (m0, m1) only
    assert (race_fmr["comparisons"], race_fmr["errors"]) == (2, 2)


def test_fusion_weighting_ratio_and_choice_on_hand_made_templates(tmp_path: Path) -> None:
    from facelead.eval.demographics_weights import PairScores, choose

    people = {f"f{i}": [10.0 * i] for i in range(4)} | {f"m{i}": [90.0 + 60 * i] for i in range(4)}
    templates = _templates(tmp_path, people, ("a", "b"))
    sex = {name: name[0].upper() for name in people}
    subjects, _ = build_subjects(_images(templates), Labels(sex, {}), TemplateIndex.of(templates))
    pairs = PairScores.of(templates, subjects, ("a", "b"))
    assert pairs.pair_sex.size == 28 and int(np.sum(pairs.pair_sex == "F")) == 6
    assert pairs.ratio({"a": 0.5, "b": 0.5}, 10.5 / 28) == pytest.approx((2.0, 1.0, 0.5))
    points = [
        {"women_men_fmr_ratio": 1.2, "fnir_rank1": 0.0130},  # too inaccurate
        {"women_men_fmr_ratio": 1.9, "fnir_rank1": 0.0115},
        {"women_men_fmr_ratio": 2.5, "fnir_rank1": 0.0100},
    ]
    assert choose(points, baseline_rank1=0.0104) == 1
    assert choose(points[:1], baseline_rank1=0.0104) is None


def test_people_without_a_sex_label_or_a_face_are_counted_not_used(tmp_path: Path) -> None:
    templates = _templates(tmp_path, {"a": [0.0], "b": [90.0], "c": [45.0]}, ("m",))
    templates.faces[2] = face_fields(NO_FACE, None, 0)
    labels = Labels({"a": "F", "b": "", "c": "M"}, {})
    subjects, skipped = build_subjects(_images(templates), labels, TemplateIndex.of(templates))
    assert subjects.names == ("a",)
    assert skipped == {"no_sex_label": 1, "no_face_in_any_photo": 1}


def test_labels_keep_the_most_frequent_value_and_group_mixed_races(tmp_path: Path) -> None:
    (tmp_path / "metadata.csv").write_text(
        "path,identity,n_images_identity,sex_afifi,race_usc\n"
        "images/x/x_0001.jpg,x,2,,\n"
        "images/x/x_0002.jpg,x,2,M,african\n"
        'images/y/y_0001.jpg,y,1,conflict,"african,caucasian"\n'
    )
    labels = read_labels(tmp_path)
    assert labels.sex == {"x": "M", "y": ""}
    assert labels.race == {"x": "african", "y": "multiple"}
    assert race_group("") == "" and race_group("latino") == "latino"
    with pytest.raises(InputError):
        read_labels(tmp_path / "missing")


# --------------------------------------------------------------------------- the normaliser

scores_2d = arrays(
    np.float64,
    st.tuples(st.integers(1, 5), st.integers(1, 12)),
    elements=st.floats(-1, 1, width=32),
)


def _cohort_for(rows: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.9, size=(rows, 20))


@given(scores_2d, st.integers(0, 2**16), st.sampled_from([None, 2, 5, 20]))
def test_normalisation_never_changes_a_probes_ranking(
    scores: np.ndarray, seed: int, top_k: int | None
) -> None:
    cohort_scores = _cohort_for(scores.shape[0], seed)
    norm = CohortNorm.fit(np.zeros((20, 4)), top_k)
    z = norm.apply(scores, cohort_scores)
    for raw, normalised in zip(scores, z, strict=True):
        order = np.argsort(raw, kind="stable")
        assert (np.diff(normalised[order]) >= 0).all()  # same order (ties may only merge)
        assert normalised[np.argmax(raw)] == normalised.max()  # the top candidate stays top


@given(
    scores_2d,
    st.integers(0, 2**16),
    st.floats(0.1, 10),
    st.floats(-1, 1),
    st.sampled_from([None, 3]),
)
@settings(max_examples=60)
def test_normalisation_is_scale_and_shift_invariant(
    scores: np.ndarray, seed: int, scale: float, shift: float, top_k: int | None
) -> None:
    cohort_scores = _cohort_for(scores.shape[0], seed)
    norm = CohortNorm.fit(np.zeros((20, 4)), top_k)
    assume(bool((norm.statistics(cohort_scores).std > 1e-3).all()))
    z = norm.apply(scores, cohort_scores)
    moved = norm.apply(scale * scores + shift, scale * cohort_scores + shift)
    assert np.allclose(moved, z, rtol=1e-9, atol=1e-9)


def test_normalisation_known_answers() -> None:
    norm = CohortNorm.fit(np.eye(4, dtype=np.float32))
    assert norm.apply([[4.0]], [[1.0, 3.0, 1.0, 3.0]]) == pytest.approx(np.array([[2.0]]))
    top = CohortNorm.fit(np.eye(4, dtype=np.float32), top_k=2)
    assert top.apply([[4.0]], [[0.0, 0.0, 1.0, 3.0]]) == pytest.approx(np.array([[2.0]]))
    s = top.symmetric([[4.0]], [[0.0, 0.0, 1.0, 3.0]], [[0.0, 0.0, 2.0, 2.0]])
    assert s[0, 0] == pytest.approx(0.5 * (2.0 + 2.0 / 1e-6))  # a flat cohort: floored std
    assert norm.cohort_scores(np.eye(4)[:1]) == pytest.approx(np.array([[1.0, 0.0, 0.0, 0.0]]))


def test_normaliser_refuses_bad_input() -> None:
    with pytest.raises(InputError):
        CohortNorm.fit(np.zeros((1, 4)))
    with pytest.raises(InputError):
        CohortNorm.fit(np.zeros((4, 4)), top_k=5)
    norm = CohortNorm.fit(np.zeros((4, 4)))
    with pytest.raises(InputError):
        norm.apply([[1.0]], [[np.nan, 0, 0, 0]])
    with pytest.raises(InputError):
        norm.apply([[1.0]], [[0.0, 0.0]])


def test_the_normaliser_has_no_demographic_input() -> None:
    """Structural: no method of the normaliser can receive a label of any kind."""
    allowed = {
        "self", "cls", "cohort_templates", "top_k", "templates", "probe_scores",
        "probe_vs_cohort_scores", "scores", "first_vs_cohort_scores", "second_vs_cohort_scores",
    }  # fmt: skip
    for name, member in inspect.getmembers(CohortNorm, inspect.isroutine):
        if name.startswith("_"):
            continue
        params = set(inspect.signature(member).parameters)
        assert params <= allowed, f"CohortNorm.{name} takes {params - allowed}"
    fields = set(CohortNorm.__dataclass_fields__)
    assert fields == {"cohort", "top_k"}
    source = inspect.getsource(inspect.getmodule(CohortNorm))  # type: ignore[arg-type]
    assert "facelead.eval" not in source and "metadata" not in source


# --------------------------------------------------------------------------- whole run


def _mini_lfw(root: Path, seed: int = 5) -> Templates:
    """30 people with 3 photos and 24 with one; women's faces share a common direction,
    so they look more alike to every 'model' (the effect NIST IR 8280 reports)."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=8)
    rows = ["path,identity,n_images_identity,sex_afifi,race_usc"]
    paths, vectors = [], []
    people = [(f"p{i:02d}", 3 if i < 30 else 1, "F" if i % 3 == 0 else "M") for i in range(54)]
    for name, count, sex in people:
        base = rng.normal(size=8) + (1.2 * common if sex == "F" else 0)
        race = "african" if int(name[1:]) % 4 == 0 else "caucasian,latino" if name < "p10" else ""
        for n in range(1, count + 1):
            rel = f"images/{name}/{name}_{n:04d}.jpg"
            rows.append(f'{rel},{name},{count},{sex},"{race}"')
            photo = base + rng.normal(scale=0.5, size=8)
            paths.append(root / rel)
            vectors.append((photo / np.linalg.norm(photo)).astype(np.float32))
    root.mkdir(parents=True, exist_ok=True)
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    faces = [face_fields(FOUND, None, 0) for _ in paths]
    per_model: dict[str, list[NDArray[np.float32] | None]] = {
        name: [np.roll(v, k) for v in vectors]
        for k, name in enumerate(("sface-flip", "facenet-v2", "dlib-v2"))
    }
    return Templates(paths, [f"{i:064x}" for i in range(len(paths))], faces, per_model)


def test_whole_analysis_on_a_synthetic_lfw(tmp_path: Path) -> None:
    templates = _mini_lfw(tmp_path / "lfw")
    plan = MitigationPlan(cohort_size=6, methods=(("znorm", None), ("znorm-top3", 3)))
    configs = model_configs("fusion-v2")
    body = analyse(tmp_path / "lfw", templates, configs, 0.05, stats.Bootstrap(50), plan)
    json.dumps(body, allow_nan=False)  # strict JSON: no NaN or infinity anywhere
    assert list(body["models"]) == ["sface-v2", "facenet-v2", "dlib-v2", "fusion-v2"]
    assert body["model_id"] == "fusion-v2"
    assert body["labels"]["sex"] == {"F": 18, "M": 36}
    assert body["cohort"]["population"]["people"] == 54 - 6
    for model in body["models"].values():
        v = model["verification"]
        assert v["sex"]["fmr"]["groups"]["F"]["people"] == 18
        assert v["sex"]["fmr"]["groups"]["F"]["comparisons"] == 18 * 17 // 2
        assert v["sex"]["fmr"]["groups"]["F"]["verdict"] == "too few to conclude"
        ident = model["identification"]
        assert ident["mated_searches"] == 60 and ident["nonmated_searches"] == 12
        for result in model["mitigation"]["methods"].values():
            assert result["rank1_unchanged"] is True
            assert result["identification"]["fnir_rank1"] == ident["fnir_rank1"]
            assert result["rule"]["rank1_within_0.2_points"] is True
    written = write_fairness(body, tmp_path / "docs")
    assert [p.name for p in written] == [
        "fairness.md",
        "fairness-fmr-sex.png",
        "fairness-fmr-race.png",
        "fairness-fmr-sex-mitigated.png",
        "fairness-weights.png",
    ]
    page = written[0].read_text()
    assert "Women/men FMR ratio" in page and "too few to conclude" in page
    assert "fusion-v2" in page and "znorm-top3" in page
    weighting = body["weighting"]
    assert weighting["pool"] == ["sface-flip", "facenet-v2", "dlib-v2"]
    assert len(weighting["points"]) == 66  # the 0.1 grid over three models


# --------------------------------------------------------------------------- CLI and real data


def test_every_demographics_option_has_help_text() -> None:
    import typer.main

    from facelead.cli.main import app

    command = typer.main.get_command(app).commands["eval"].commands["demographics"]  # type: ignore[attr-defined]
    for param in command.params:
        assert getattr(param, "help", None), f"{param.name} has no help text"


def test_a_missing_data_folder_exits_2_with_one_line(tmp_path: Path) -> None:
    from facelead.cli.main import app

    args = ["eval", "demographics", "--data", str(tmp_path / "none"), "--cache", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "not_found" in lines[0], result.output


def test_real_lfw_labels(lfw_dir: Path) -> None:
    labels = read_labels(lfw_dir)
    people = set(labels.sex)
    assert len(people) == 5749
    assert sum(s == "F" for s in labels.sex.values()) == 1471
    assert sum(s == "M" for s in labels.sex.values()) == 4272
    assert sum(s == "" for s in labels.sex.values()) == 6  # 5 "conflict", 1 blank
    assert sum(bool(r) for r in labels.race.values()) == 866


def test_probe_side_normalisation_of_search_outcomes() -> None:
    from facelead.eval.demographics_run import normalised_outcomes
    from facelead.eval.identification import NO_CANDIDATE, ProbeOutcomes

    norm = CohortNorm.fit(np.eye(2, dtype=np.float32))  # cohort scores = the probe's 2 coords
    probes = np.array([[1, 3], [0, 2], [0, 0], [2, 4], [5, 5]], dtype=np.float32)
    found = ProbeOutcomes(
        np.array([1, 4, 0]), np.array([4.0, 1.0, np.nan]), np.array([3.0, NO_CANDIDATE])
    )
    mate = np.array([0, 3, -2, -1, -1])
    out = normalised_outcomes(found, mate, norm, probes)
    assert np.array_equal(out.ranks, found.ranks)
    assert out.mate_scores[:2] == pytest.approx([2.0, 0.0]) and np.isnan(out.mate_scores[2])
    assert out.nonmated_top[0] == pytest.approx(0.0)  # (3 - 3) / 1
    assert out.nonmated_top[1] < out.nonmated_top[0]  # a probe without a face stays below


def test_the_default_rule_needs_a_narrower_ratio_and_rank1_within_0_2_points() -> None:
    from facelead.eval.demographics_run import rule

    def v(ratio: float) -> dict[str, object]:
        return {"women_men_fmr_ratio": {"ratio": ratio}}

    def i(rank1: float) -> dict[str, object]:
        groups = {"F": {"rate": 0.02}, "M": {"rate": 0.01}}
        return {"fnir_rank1": rank1, "fnir_at_fpir": 0.05, "sex": {"fpir": {"groups": groups}}}

    ok = rule(v(2.2), v(1.4), i(0.010), i(0.011))
    assert ok["qualifies_as_default"] and ok["ratio_at_most_1.5"]
    assert ok["women_men_fpir_ratio_after"] == pytest.approx(2.0)
    assert not rule(v(2.2), v(1.4), i(0.010), i(0.0125))["qualifies_as_default"]
    wider = rule(v(1.2), v(1.4), i(0.010), i(0.010))
    assert not wider["qualifies_as_default"] and wider["ratio_at_most_1.5"]


def test_centred_default_is_judged_against_its_uncentred_parent(tmp_path: Path) -> None:
    """fusion-v4's report carries the centring block: fusion-v3 before, the blend sweep on
    halves, the rule; the page renders it as mitigation 3 and counts it as a candidate."""
    templates = _mini_lfw(tmp_path / "lfw")
    for base in ("sface-flip", "facenet-v2"):
        rows = [v for v in templates.vectors[base] if v is not None]
        centre = np.mean(rows, axis=0).astype(np.float32)
        templates.vectors[f"{base}-c1"] = [
            None if v is None else centred(v, centre) for v in templates.vectors[base]
        ]
    plan = MitigationPlan(cohort_size=6, methods=(("znorm", None),))
    configs = model_configs("fusion-v4")
    assert [c.model_id for c in configs][-2:] == ["fusion-v3", "fusion-v4"]
    body = analyse(tmp_path / "lfw", templates, configs, 0.05, stats.Bootstrap(50), plan)
    json.dumps(body, allow_nan=False)
    c = body["centring"]
    assert (c["before"], c["after"]) == ("fusion-v3", "fusion-v4")
    assert c["shipped"]["blend"] == 0.9
    assert [p["blend"] for p in c["sweep"]["points"]] == [round(0.1 * i, 1) for i in range(13)]
    fmr_v3 = body["models"]["fusion-v3"]["verification"]["women_men_fmr_ratio"]["ratio"]
    assert c["rule"]["women_men_fmr_ratio_before"] == fmr_v3
    page = write_fairness(body, tmp_path / "docs")[0].read_text()
    assert "## Mitigation 3: template centring" in page
    assert "| fusion-v4 | centring |" in page
    assert candidates(body)[0] == ("template centring (fusion-v3 → fusion-v4)", c["rule"])
