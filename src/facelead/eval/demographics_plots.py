"""Plots of the demographics report (matplotlib via :mod:`facelead.eval.plots`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from facelead.eval.plots import _pyplot, _save

Json = Mapping[str, Any]


def _fmr_axis(ax: Any, verification: Json, family: str, title: str, target: float) -> None:
    curves = verification["curves"]
    grid = np.asarray(curves["thresholds"], dtype=float)
    groups = verification[family]["fmr"]["groups"]
    for group, values in curves[family].items():
        if groups[group]["people"] < 30:
            continue  # a handful of people draws noise, not a curve
        fmr = np.array([np.nan if v is None else v for v in values], dtype=float)
        keep = fmr > 0
        ax.plot(grid[keep], fmr[keep], label=f"{group} ({groups[group]['people']:,} people)")
    ax.axvline(verification["threshold"], color="grey", linestyle="--", linewidth=0.8)
    ax.axhline(target, color="grey", linestyle=":", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("threshold (score)")
    ax.set_ylabel("FMR within group")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower left")


def fmr_plot(panels: list[tuple[str, Json]], family: str, path: Path, target: float) -> Path:
    """FMR against threshold per group (log y), one panel per model or method.

    The dashed line is the global threshold, the dotted line the target FMR: where a
    group's curve crosses the dashed line above the dotted one, that group collects
    more false matches than the target at the one threshold everybody shares.
    """
    plt = _pyplot()
    cols = min(len(panels), 2)
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 4 * rows), squeeze=False)
    for ax, (title, verification) in zip(axes.ravel(), panels, strict=False):
        _fmr_axis(ax, verification, family, title, target)
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def weights_plot(weighting: Json, default: Json, path: Path) -> Path:
    """Women/men FMR ratio against FNIR at rank 1 for every fusion weight vector.

    The dotted lines are the targets (ratio 1.5, the default's FNIR at rank 1 plus
    0.2 points): a point left of the vertical and below the horizontal line would meet
    both. The default model and the chosen weights are marked.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    points = [p for p in weighting["points"] if p["women_men_fmr_ratio"] is not None]
    x = [100 * p["fnir_rank1"] for p in points]
    y = [p["women_men_fmr_ratio"] for p in points]
    ax.scatter(x, y, s=12, color="tab:blue", label="fusion weight vectors (grid)")
    base_x = 100 * default["identification"]["fnir_rank1"]
    base_y = default["verification"]["women_men_fmr_ratio"]["ratio"]
    ax.scatter([base_x], [base_y], marker="*", s=160, color="tab:red", label="default model")
    chosen = weighting.get("chosen")
    if chosen is not None:
        best = weighting["points"][chosen]
        ax.scatter(
            [100 * best["fnir_rank1"]], [best["women_men_fmr_ratio"]], marker="D", s=60,
            color="tab:green", label="chosen weights",
        )  # fmt: skip
    ax.axhline(1.5, color="grey", linestyle=":", linewidth=0.8)
    ax.axvline(base_x + 0.2, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("1:N FNIR at rank 1 (%)")
    ax.set_ylabel("1:1 women/men FMR ratio")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path
