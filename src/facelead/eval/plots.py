"""CMC and DET plots (matplotlib, Agg backend: no display, byte-stable enough for docs)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "facelead"
    return plt


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    return path


def cmc_plot(models: Mapping[str, Mapping[str, Any]], path: Path, title: str) -> Path:
    """Identification rate (1 - FNIR) against rank, one line per model."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, ident in models.items():
        rates = np.asarray(ident["cmc"], dtype=float)
        ax.plot(np.arange(1, rates.size + 1), rates, marker=".", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("rank")
    ax.set_ylabel("identification rate (1 - FNIR)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def det_plot(models: Mapping[str, Mapping[str, Any]], path: Path, title: str) -> Path:
    """FNIR against FPIR (log-log), NIST IR 8271 style; dashed lines at FPIR 0.01, 0.003."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, ident in models.items():
        fpir = np.asarray(ident["det_fpir"], dtype=float)
        fnir = np.asarray(ident["det_fnir"], dtype=float)
        keep = (fpir > 0) & (fnir > 0)
        ax.plot(fpir[keep], fnir[keep], label=label)
    for target in (0.01, 0.003):
        ax.axvline(target, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("FPIR (non-mated searches returning a candidate above threshold)")
    ax.set_ylabel("FNIR (mated searches missing the mate)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path
