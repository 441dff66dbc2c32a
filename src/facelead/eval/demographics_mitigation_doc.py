"""The mitigation sections of docs/fairness.md: normalisation and fusion weighting, measured.

Every sentence that states a result is built from the JSON, including which
method (if any) meets the target, so the page cannot claim more than was run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from facelead.eval.demographics_doc import (
    IDENTIFICATION_TABLES,
    VERIFICATION_TABLES,
    ci,
    n,
    pct,
    tables,
    times,
    yes,
)

Json = Mapping[str, Any]


def rule_cells(r: Json, after_ci: Any) -> str:
    return (
        f"| {times(r['women_men_fmr_ratio_before'])} → "
        f"**{times(r['women_men_fmr_ratio_after'])}** {ci(after_ci, times)} "
        f"| {times(r['women_men_fpir_ratio_before'])} → {times(r['women_men_fpir_ratio_after'])} "
        f"| {pct(r['fnir_rank1_before'])} → {pct(r['fnir_rank1_after'])} "
        f"| {pct(r['fnir_at_fpir_before'])} → {pct(r['fnir_at_fpir_after'])} "
        f"| {yes(r['narrows_ratio'])} | {yes(r['rank1_within_0.2_points'])} "
        f"| {yes(r['ratio_at_most_1.5'])} | {yes(r['qualifies_as_default'])} |"
    )


RULE_HEADER = (
    "| Model | Method | Women/men FMR ratio before → after [95% CI after] "
    "| 1:N women/men FPIR ratio before → after | FNIR rank 1 before → after "
    "| FNIR @ FPIR=0.01 before → after | Narrows ratio | Rank 1 within 0.2 points "
    "| Ratio ≤ 1.5 | Qualifies as default (issue rule) |"
)


def mitigation_table(report: Json) -> list[str]:
    """Every model x normaliser: the ratios and the accuracy before and after, the rule."""
    lines = [RULE_HEADER, "|---|---|---|---|---|---|---|---|---|---|"]
    for key, model in report["models"].items():
        for method, result in model["mitigation"]["methods"].items():
            checked = "" if result["rank1_unchanged"] else " (**ranks changed!**)"
            after_ci = result["verification"]["women_men_fmr_ratio"]["ci"]
            lines.append(f"| {key} | {method}{checked} " + rule_cells(result["rule"], after_ci))
    return lines


def _default_note(report: Json) -> str:
    """What the default already contains, and what is measured but not switched on."""
    c = report.get("centring")
    centred = (
        f"The default **{c['after']}** already contains mitigation 3 (template centring): "
        f"it is {c['before']} measured from a fixed centre. "
        if c
        else ""
    )
    return (
        f"- {centred}Mitigations 1 and 2, measured on top of the default, are not switched "
        "on; the cohort normaliser is not wired into search. How the default's members and "
        "weights were chosen: `biometrics/fusion.py` and [accuracy.md](accuracy.md)."
    )


def candidates(report: Json) -> list[tuple[str, Json]]:
    """(label, rule) of every mitigation measured on the default model."""
    default = report["model_id"]
    normalisers = [
        (f"{method} on {default}", result["rule"])
        for method, result in report["models"][default]["mitigation"]["methods"].items()
    ]
    found = list(normalisers)
    weighting = report["weighting"]
    if "rule" in weighting:
        found.append(("fusion weighting", weighting["rule"]))
        before = normalisers[0][1] if normalisers else None
        for method, result in weighting["model"]["mitigation"]["methods"].items():
            if before is not None:
                found.append((f"fusion weighting + {method}", _chain(before, result)))
    c = report.get("centring")
    if c:
        found.insert(0, (f"template centring ({c['before']} → {c['after']})", c["rule"]))
    return found


def _chain(default_rule: Json, result: Json) -> dict[str, Any]:
    """Weighting then a normaliser, judged against the default model on the same people
    (the *before* of the default's own normalisation: cohort left out)."""
    rule = dict(result["rule"])
    for key in ("women_men_fmr_ratio", "women_men_fpir_ratio", "fnir_rank1", "fnir_at_fpir"):
        rule[f"{key}_before"] = default_rule[f"{key}_before"]
    before, after = rule["women_men_fmr_ratio_before"], rule["women_men_fmr_ratio_after"]
    rule["narrows_ratio"] = before is not None and after is not None and after < before
    change = rule["fnir_rank1_after"] - rule["fnir_rank1_before"]
    rule["rank1_within_0.2_points"] = change <= 0.002
    rule["qualifies_as_default"] = rule["narrows_ratio"] and rule["rank1_within_0.2_points"]
    return rule


def mitigation_summary(report: Json) -> list[str]:
    """Summary bullets: the best qualifying mitigation, and whether the target is met."""
    found = candidates(report)
    ok = [(label, r) for label, r in found if r["qualifies_as_default"]]
    meets = [(label, r) for label, r in ok if r["ratio_at_most_1.5"]]
    default = report["model_id"]
    if not ok:
        return [f"- No mitigation measured here qualifies as the default for {default}."]
    label, r = min(ok, key=lambda item: item[1]["women_men_fmr_ratio_after"])
    lines = [
        f"- Best qualifying mitigation: **{label}**, women/men FMR ratio "
        f"{times(r['women_men_fmr_ratio_before'])} → **{times(r['women_men_fmr_ratio_after'])}**,"
        f" FNIR at rank 1 {pct(r['fnir_rank1_before'])} → {pct(r['fnir_rank1_after'])}, "
        f"FNIR @ FPIR=0.01 {pct(r['fnir_at_fpir_before'])} → {pct(r['fnir_at_fpir_after'])}. "
        "It qualifies by issue 9's rule (narrower ratio, FNIR at rank 1 at most 0.2 points "
        "worse).",
    ]
    if meets:
        names = ", ".join(label for label, _ in meets)
        lines.append(f"- The target (ratio ≤ 1.5× within the rank-1 rule) is met by: {names}.")
    else:
        lines.append(
            "- **The target (women/men FMR ratio ≤ 1.5× with FNIR at rank 1 at most 0.2 "
            "points worse) is not met by any mitigation measured here.**"
        )
    lines.append(_default_note(report))
    return lines


def _limits_paragraph(report: Json, cohort: Json) -> str:
    """Why a per-face normaliser cannot be expected to reach 1, with the measured ratios."""
    default = report["model_id"]
    composition = cohort["composition"]
    women, men = composition["sex"].get("F", 0), composition["sex"].get("M", 0)
    after = {
        key: [r["rule"]["women_men_fmr_ratio_after"] for r in m["mitigation"]["methods"].values()]
        for key, m in report["models"].items()
    }
    fpir = ", ".join(
        f"{times(r['rule']['women_men_fpir_ratio_before'])} → "
        f"{times(r['rule']['women_men_fpir_ratio_after'])} ({name})"
        for name, r in report["models"][default]["mitigation"]["methods"].items()
    )
    measured = "; ".join(
        f"{key}: " + ", ".join(times(v) for v in values) for key, values in after.items()
    )
    return (
        "**How far normalisation can go.** A per-face normaliser equalises how often each "
        "face falsely matches the *whole* cohort. Most false matches are between people of "
        "the same sex, so after normalisation a group's within-group FMR is expected to "
        "scale with the inverse of its share of the population rather than to become "
        f"equal. For comparison: the cohort holds {n(women)} women and {n(men)} men (men/women "
        f"{times(men / women if women else None)}); the women/men ratios after "
        f"normalisation are {measured}. In 1:N, where each probe meets the whole gallery, "
        f"the women/men FPIR ratio of {default} goes {fpir} (few false positives: see the "
        "FPIR tables)."
    )


def mitigation_section(report: Json, cohort: Json) -> list[str]:
    default = report["model_id"]
    model = report["models"][default]
    population = cohort["population"]
    methods = "; ".join(
        f"*{name}* uses "
        + ("the whole cohort" if k is None else f"each face's {k} highest cohort scores")
        for name, k in cohort["methods"].items()
    )
    lines = [
        "## Mitigation 1: cohort score normalisation (demographic-blind)",
        "",
        f"Each score is expressed in standard deviations above the mean score of the face "
        f"against a fixed cohort of {n(cohort['size'])} gallery people (a seeded sample, "
        f"seed {cohort['seed']}, of the enrolled people with a single photo, chosen by name "
        f"only; none is ever a mate). {methods}. In 1:N the probe's scores are normalised "
        "(an increasing map per probe: ranks cannot change, re-checked on the full score "
        "matrix); in 1:1 both sides' Z-values are averaged (S-norm). The cohort people are "
        "left out of the 1:1 figures before and after (remaining: women "
        f"{n(population['sex'].get('F', 0))}, men {n(population['sex'].get('M', 0))}), "
        "so *before* here differs slightly from the tables above.",
        "",
        *mitigation_table(report),
        "",
        _limits_paragraph(report, cohort),
        "",
        f"![FMR vs threshold by sex, {default}, before and after]"
        "(img/fairness-fmr-sex-mitigated.png)",
        "",
    ]
    for method, result in model["mitigation"]["methods"].items():
        lines += [
            f"### {default} after {method}",
            "",
            *tables(result["verification"], ("sex", "race"), VERIFICATION_TABLES),
            *tables(result["identification"], ("sex",), IDENTIFICATION_TABLES),
        ]
    return lines


def _weighting_rules(report: Json) -> list[str]:
    """The chosen weights against the default, alone and with each normaliser on top."""
    w, default = report["weighting"], report["model_id"]
    model = w["model"]
    before = next(iter(report["models"][default]["mitigation"]["methods"].values()))["rule"]
    chained = [
        f"| {default} | fusion weighting + {method} "
        + rule_cells(_chain(before, result), result["verification"]["women_men_fmr_ratio"]["ci"])
        for method, result in model["mitigation"]["methods"].items()
    ]
    halves = [h for h in w["split_half"].values() if h]
    checks = "; ".join(
        f"{' + '.join(f'{p} ×{x:g}' for p, x in zip(w['pool'], h['weights'], strict=True))}"
        f": {times(h['ratio_where_chosen'])} where chosen, "
        f"{times(h['ratio_on_other_half'])} on the other half"
        for h in halves
    )
    return [
        RULE_HEADER,
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {default} | fusion weighting "
        + rule_cells(w["rule"], model["verification"]["women_men_fmr_ratio"]["ci"]),
        *chained,
        "",
        "Selection check (weights re-chosen on a seeded half of the people, ratio measured "
        f"on the other half): {checks or 'no point qualified on either half'}.",
        "",
    ]


def _lowest_points(weighting: Json, count: int = 8) -> list[str]:
    lines = [
        "Lowest ratios measured, with their accuracy:",
        "",
        f"| Weights ({', '.join(weighting['pool'])}) | Women/men FMR ratio | FNIR rank 1 "
        "| FNIR @ FPIR=0.01 |",
        "|---|---|---|---|",
    ]
    ranked = sorted(
        (p for p in weighting["points"] if p["women_men_fmr_ratio"] is not None),
        key=lambda p: p["women_men_fmr_ratio"],
    )
    for p in ranked[:count]:
        lines.append(
            f"| {', '.join(f'{x:g}' for x in p['weights'])} | {times(p['women_men_fmr_ratio'])} "
            f"| {pct(p['fnir_rank1'])} | {pct(p['fnir_at_fpir'])} |"
        )
    return [*lines, ""]


def weighting_section(report: Json) -> list[str]:
    """Mitigation 2: every fusion weight vector measured, the chosen one in full."""
    w = report["weighting"]
    default = report["model_id"]
    lines = [
        "## Mitigation 2: per-model fusion weighting",
        "",
        f"Every weight vector over {', '.join(w['pool'])} in steps of {w['step']:g} "
        f"({len(w['points'])} points) was measured: 1:1 women/men FMR ratio (all people, "
        "one global threshold) and 1:N FNIR. Matching stays demographic-blind (one fixed "
        "weight vector for every face), but the weights are *chosen* with the labels: the "
        f"lowest ratio among the points whose FNIR at rank 1 is within 0.2 points of "
        f"{default}'s.",
        "",
        "![Women/men FMR ratio against FNIR at rank 1, every weight vector]"
        "(img/fairness-weights.png)",
        "",
    ]
    if "rule" not in w:
        return [*lines, "No weight vector stays within 0.2 points of the default's FNIR.", ""]
    model = w["model"]
    weights = " + ".join(f"{name} ×{weight:g}" for name, weight in model["members"])
    return [
        *lines,
        f"Chosen: **{weights}**. With a normaliser on top, the *before* is {default} on the "
        "people left after the cohort (as in mitigation 1).",
        "",
        *_weighting_rules(report),
        *_lowest_points(w),
        f"### Fusion weighting ({weights}) in full",
        "",
        *tables(model["verification"], ("sex", "race"), VERIFICATION_TABLES),
        *tables(model["identification"], ("sex",), IDENTIFICATION_TABLES),
    ]
