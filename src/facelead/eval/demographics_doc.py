"""Formatting and per-group tables shared by the fairness page's sections."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Json = Mapping[str, Any]
NUMBER_FORMAT = "{:,}"


def sci(value: float | None) -> str:
    return "—" if value is None else "0" if value == 0 else f"{value:.2e}"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def ci(interval: list[float | None] | None, fmt: Any) -> str:
    """A 95% interval; an unbounded upper end (a zero reference rate) shows as ∞."""
    if interval is None:
        return "[—]"
    return f"[{fmt(interval[0])}, {'∞' if interval[1] is None else fmt(interval[1])}]"


def times(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def rate(entry: Json, fmt: Any) -> str:
    return f"{fmt(entry['rate'])} {ci(entry['ci'], fmt)}"


def ratio(entry: Json) -> str:
    return f"{times(entry['ratio'])} {ci(entry['ratio_ci'], times)}"


def yes(value: bool) -> str:
    return "yes" if value else "**no**"


def n(value: int) -> str:
    return NUMBER_FORMAT.format(value)


# --------------------------------------------------------------------------- tables


def rate_table(
    block: Json, family: str, name: str, columns: tuple[str, str], fmt: Any
) -> list[str]:
    """One rate per group: counts, the rate and its ratio to the lowest group, a verdict."""
    comparisons, errors = columns
    lines = [
        f"| {family.capitalize()} | People | {comparisons} | {errors} | {name} [95% CI] "
        f"| {name} ratio to lowest [95% CI] | Conclusion |",
        "|---|---|---|---|---|---|---|",
    ]
    for group, g in block["groups"].items():
        lines.append(
            f"| {group} | {n(g['people'])} | {n(g['comparisons'])} | {n(g['errors'])} "
            f"| {rate(g, fmt)} | {ratio(g)} | {g['verdict']} |"
        )
    return [*lines, ""]


VERIFICATION_TABLES = (
    ("fmr", "FMR", ("Impostor comparisons", "False matches"), sci),
    ("fnmr", "FNMR", ("Genuine comparisons", "False non-matches"), pct),
)
IDENTIFICATION_TABLES = (
    ("fnir_rank1", "FNIR rank 1", ("Mated searches", "Mate not at rank 1"), pct),
    ("fnir_at_fpir", "FNIR @ threshold", ("Mated searches", "Mate below threshold"), pct),
    ("fpir", "FPIR", ("Non-mated searches", "False positives"), pct),
)


def tables(result: Json, families: tuple[str, ...], which: tuple[Any, ...]) -> list[str]:
    lines: list[str] = []
    for family in families:
        for key, name, columns, fmt in which:
            lines += rate_table(result[family][key], family, name, columns, fmt)
    return lines


def members(model: Json) -> str:
    return " + ".join(f"{name} ×{weight:g}" for name, weight in model["members"])
