"""The template-centring section of docs/fairness.md (mitigation 3), from the JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from facelead.eval.demographics_doc import n, times
from facelead.eval.demographics_mitigation_doc import RULE_HEADER, rule_cells

Json = Mapping[str, Any]


def _sweep_table(sweep: Json) -> list[str]:
    lines = [
        "| Blend (women's mean share) | Ratio, half A fitted on A | same centre, half B "
        "| Ratio, half B fitted on B | same centre, half A |",
        "|---|---|---|---|---|",
    ]
    for p in sweep["points"]:
        lines.append(
            f"| {p['blend']:.1f} | {times(p['ratio_a_where_fitted'])} "
            f"| {times(p['ratio_a_other_half'])} | {times(p['ratio_b_where_fitted'])} "
            f"| {times(p['ratio_b_other_half'])} |"
        )
    return [*lines, ""]


def centring_section(report: Json) -> list[str]:
    """Mitigation 3: what the centre is, how its one labelled parameter was chosen, and
    the rule's verdict on the default against its uncentred *before*."""
    c = report.get("centring")
    if not c:
        return []
    shipped, sweep = c["shipped"], c["sweep"]
    chosen = sweep["chosen"]
    row = next(p for p in sweep["points"] if p["blend"] == chosen["a"])
    after_ci = report["models"][c["after"]]["verification"]["women_men_fmr_ratio"]["ci"]
    return [
        "## Mitigation 3: template centring (in the default model)",
        "",
        f"**{c['after']}** is {c['before']}'s members and weights, each member's template "
        "measured from a fixed centre vector instead of from the origin (subtract, then "
        "re-normalise; `biometrics/centre.py`). The centre is one vector per member model, "
        "the same for every face, so matching never reads a demographic field. It is the "
        "blend `b × mean(women) + (1 − b) × mean(men)` of the members' reference templates "
        f"of LFW's labelled people; the shipped file uses b = {shipped['blend']:g} "
        f"({n(int(shipped['women']))} women, {n(int(shipped['men']))} men).",
        "",
        "The blend is the one number fitted with the labels, so it is chosen on a seeded "
        "half of the people (centre from that half, ratio of that half's impostor pairs, "
        "closest to parity) and measured on the other half with the same centre; the "
        f"reverse direction is shown too. Chosen on half A: b = {chosen['a']:g}, ratio "
        f"{times(row['ratio_a_where_fitted'])} there and **{times(row['ratio_a_other_half'])}"
        f"** on half B. (Chosen on half B: b = {chosen['b']:g}.)",
        "",
        *_sweep_table(sweep),
        f"The rule, {c['before']} → {c['after']}, on all people (the tables above):",
        "",
        RULE_HEADER,
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {c['after']} | centring " + rule_cells(c["rule"], after_ci),
        "",
    ]
