"""docs/fairness.md and docs/img/fairness-*.png, generated from the demographics JSON.

Nothing in the page is typed by hand: every number, count and conclusion is
read from the run's JSON (``bench/results/fairness-lfw.json``), so the page is
regenerated, never edited, when a model or the code changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from facelead.eval.demographics_centring_doc import centring_section
from facelead.eval.demographics_doc import (
    IDENTIFICATION_TABLES,
    VERIFICATION_TABLES,
    ci,
    members,
    n,
    pct,
    sci,
    tables,
    times,
)
from facelead.eval.demographics_mitigation_doc import (
    mitigation_section,
    mitigation_summary,
    weighting_section,
)
from facelead.eval.demographics_plots import fmr_plot, weights_plot
from facelead.eval.lfw import FUSION_POOL

COMMAND = (
    "facelead eval demographics --data ../shared/data/lfw "
    "--json bench/results/fairness-lfw.json --report docs/"
)

Json = Mapping[str, Any]


# --------------------------------------------------------------------------- formatting


def model_section(key: str, model: Json, report: Json) -> list[str]:
    v, i = model["verification"], model["identification"]
    wm = v["women_men_fmr_ratio"]
    return [
        f"### {key} ({members(model)})",
        "",
        f"**1:1**, one global threshold {v['threshold']:.4f} giving FMR = "
        f"{sci(v['fmr'])} over all {n(v['impostor_comparisons'])} impostor "
        f"comparisons (target {report['target_fmr']:g}); FNMR overall {pct(v['fnmr'])} over "
        f"{n(v['genuine_comparisons'])} genuine comparisons. Women/men FMR ratio "
        f"**{times(wm['ratio'])}** {ci(wm['ci'], times)}.",
        "",
        *tables(v, ("sex", "race"), VERIFICATION_TABLES),
        f"**1:N**, threshold {i['threshold']:.4f} at FPIR = {i['target_fpir']:g} over all "
        f"{n(i['nonmated_searches'])} non-mated searches; overall FNIR at rank 1 "
        f"{pct(i['fnir_rank1'])}, at the threshold {pct(i['fnir_at_fpir'])} "
        f"({n(i['mated_searches'])} mated searches).",
        "",
        *tables(i, ("sex", "race"), IDENTIFICATION_TABLES),
    ]


def summary(report: Json) -> list[str]:
    key = report["model_id"]
    model = report["models"][key]
    wm = model["verification"]["women_men_fmr_ratio"]
    lines = [
        f"- Default model **{key}** ({members(model)}), 1:1 at FMR = {report['target_fmr']:g}: "
        f"women's FMR is **{times(wm['ratio'])}** men's {ci(wm['ci'], times)}.",
    ]
    for other, m in report["models"].items():
        if other != key:
            r = m["verification"]["women_men_fmr_ratio"]
            lines.append(
                f"- {other}: women/men FMR ratio {times(r['ratio'])} {ci(r['ci'], times)}."
            )
    return [*lines, *conclusions(model), *mitigation_summary(report)]


METRICS = (
    ("verification", "fmr", "1:1 FMR"),
    ("verification", "fnmr", "1:1 FNMR"),
    ("identification", "fnir_rank1", "1:N FNIR at rank 1"),
    ("identification", "fnir_at_fpir", "1:N FNIR at the FPIR=0.01 threshold"),
    ("identification", "fpir", "1:N FPIR"),
)


def conclusions(model: Json) -> list[str]:
    """Every differential of the default model whose 95% interval lies above 1, and how
    many group figures were too small to conclude from."""
    higher: list[str] = []
    small, total = {"sex": 0, "race": 0}, {"sex": 0, "race": 0}
    for part, key, label in METRICS:
        for family in ("sex", "race"):
            block = model[part][family][key]
            for group, g in block["groups"].items():
                total[family] += 1
                small[family] += g["verdict"] == "too few to conclude"
                if g["verdict"].startswith("higher"):
                    higher.append(
                        f"{label}, {group}: {times(g['ratio'])} {ci(g['ratio_ci'], times)} "
                        f"the {block['reference']} rate ({n(g['people'])} people, "
                        f"{n(g['comparisons'])} comparisons, {n(g['errors'])} errors)"
                    )
    lines = [f"- Differentials of the default model (95% CI above 1): {'; '.join(higher)}."]
    if not higher:
        lines = ["- No differential of the default model has a 95% interval above 1."]
    lines.append(
        f"- Too few to conclude (fewer people or errors than the minimum): {small['sex']} of "
        f"{total['sex']} sex figures and {small['race']} of {total['race']} race figures."
    )
    return lines


METHOD = """\
The method follows NIST IR 8280 (Grother, Ngan & Hanaoka, 2019, *Face Recognition
Vendor Test Part 3: Demographic Effects*):

- **1:1 impostors: one image per person**: each person's first photo with a face is
  compared with every other person's.
- **One global threshold**, set at the target FMR over that *whole* impostor set (every
  pair of two different people, whatever their sex), as an agency sets one threshold for
  everybody; every group is then measured at that same threshold.
- Per group, **FMR counts the impostor pairs within the group**: same sex, and for race
  the same `race_usc` label and the same sex, since NIST IR 8280 measures false matches
  between demographically matched people (cross-sex pairs almost never match).
- **1:1 genuine**: each person's reference photo against each of their other photos; a
  photo without a detected face counts as a false non-match.
- **1:N**: the LFW protocol of `docs/accuracy.md` (gallery: first photo of each enrolled
  person; mated probes: their other photos; non-mated probes: held-out single-photo
  people, searched against the whole gallery). The threshold is set at FPIR = 0.01 over
  all non-mated searches.
- **Ratios** are to the group with the lowest rate among those large enough to conclude
  from. **95% confidence intervals** come from a seeded bootstrap over *people* (one
  person's comparisons are not independent of each other), resampling each group's
  people with replacement.
- **Too few to conclude**: a group with fewer than {min_people} people or fewer than
  {min_errors} errors is shown but no conclusion is drawn from it; a ratio is only called
  *higher* when its whole 95% interval lies above 1.
- Labels (`sex_afifi`, `race_usc` from `metadata.csv`) are used **only to group the
  results**. Matching, thresholds and the normaliser never read them.
"""

LIMITS = """\
- LFW holds news photos of public figures, mostly white men; it is not a booking-photo
  set, and the race labels cover only {race_people:,} of the people. Small race groups
  cannot support conclusions here; an agency must repeat this on its own labelled photos
  (`facelead eval folder`) before relying on any figure.
- The normalisers were fixed before measuring (cohort size, seed, top-k), but they were
  measured on the same LFW people they are reported on; their benefit on other photos
  must be re-measured.
- The centre's blend (mitigation 3) was chosen with the sex labels of LFW people; the
  half-and-half check shows how it carries to people not used to choose, but not to
  booking photos: re-measure on your own labelled photos.
- The fusion weights of mitigation 2 were *chosen* with the labels on these same people;
  the split-half check above shows how much of the chosen ratio survives on people not
  used to choose.
- A normalised score is a number of standard deviations, not a cosine: the search
  service's thresholds and calibration table would have to be re-derived on the same
  scale if a normaliser were switched on.
"""


def who_is_counted(labels: Json) -> str:
    excluded = ", ".join(
        f"{count} ({why.replace('_', ' ')})" for why, count in labels["excluded"].items()
    )
    race = ", ".join(f"{g} {n(count)}" for g, count in labels["race"].items())
    return (
        f"1:1: {n(labels['people'])} people with a sex label and a face in at least one "
        f"photo (women {n(labels['sex'].get('F', 0))}, men {n(labels['sex'].get('M', 0))}); "
        f"left out: {excluded or 'nobody'}. Race labels: {race}; unlabelled "
        f"{n(labels['race_unlabelled'])}. A person with several race labels is in the group "
        "*multiple*."
    )


def render(report: Json) -> str:
    labels, cohort = report["labels"], report["cohort"]
    boot = report["bootstrap"]
    default = report["model_id"]
    order = [default, *[k for k in report["models"] if k != default]]
    lines = [
        "# Fairness: demographic differentials (NIST IR 8280 method)",
        "",
        f"Generated by `{report.get('command', COMMAND)}`; do not edit by hand. "
        f"Bootstrap: {boot['resamples']} resamples, seed {boot['seed']}. Measured on LFW; "
        "see the limits at the end.",
        "",
        "## Summary",
        "",
        *summary(report),
        "",
        "## Method",
        "",
        METHOD.format(**report["small_counts"]),
        "## Who is counted",
        "",
        who_is_counted(labels),
        "",
        "## Differentials per model",
        "",
        "![FMR vs threshold by sex](img/fairness-fmr-sex.png)",
        "",
        "![FMR vs threshold by race](img/fairness-fmr-race.png)",
        "",
    ]
    for key in order:
        lines += model_section(key, report["models"][key], report)
    lines += centring_section(report)
    lines += mitigation_section(report, cohort)
    lines += weighting_section(report)
    lines += ["## Limits", "", LIMITS.format(race_people=sum(labels["race"].values()))]
    missing = [name for name in FUSION_POOL if name not in report.get("pool", FUSION_POOL)]
    if missing:
        lines.append(
            f"- Not measured in this run: {', '.join(missing)} (left out of `--pool`, so its "
            "templates were not extracted); rerun with the default pool to add it."
        )
    return "\n".join(lines)


def write_fairness(report: Json, folder: Path) -> list[Path]:
    """Write ``fairness.md`` and its four plots into *folder* (docs/)."""
    target = float(report["target_fmr"])
    models = report["models"]
    default = report["model_id"]
    panels = [(key, model["verification"]) for key, model in models.items()]
    images = folder / "img"
    sex = fmr_plot(panels, "sex", images / "fairness-fmr-sex.png", target)
    race = fmr_plot(panels, "race", images / "fairness-fmr-race.png", target)
    mitigation = models[default]["mitigation"]
    after = [
        (f"{default} before (cohort left out)", mitigation["before"]["verification"]),
        *[(f"{default} after {m}", r["verification"]) for m, r in mitigation["methods"].items()],
    ]
    mitigated = fmr_plot(after, "sex", images / "fairness-fmr-sex-mitigated.png", target)
    weights = weights_plot(report["weighting"], models[default], images / "fairness-weights.png")
    page = folder / "fairness.md"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(render(report), encoding="utf-8")
    return [page, sex, race, mitigated, weights]
