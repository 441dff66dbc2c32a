"""Report generation: accuracy.md, models.md and the plots come from the JSON alone."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from facelead.eval import metrics
from facelead.eval.identification import SearchScores, outcomes, summarise
from facelead.eval.lfw import LfwReport, ModelReport
from facelead.eval.report import write_report


def _model(model_id: str, rng: np.random.Generator, separation: float) -> ModelReport:
    mated = np.tile([True, False], 300)
    scores = np.where(mated, separation, 0.0) + rng.normal(0, 0.1, 600)
    fold = np.repeat(np.arange(10), 60)
    verification = asdict(metrics.kfold_verification(scores, mated, fold))
    matrix = rng.normal(0, 0.1, (80, 40)).astype(np.float32)
    mate = np.concatenate([np.arange(60) % 40, -np.ones(20, np.int64)])
    matrix[np.arange(60), mate[:60]] += separation
    found = outcomes(SearchScores({"m": matrix}, mate, np.ones(80, bool)), matrix)
    return ModelReport(model_id, [("m", 1.0)], verification, summarise(found).as_dict())


def _report() -> dict[str, object]:
    rng = np.random.default_rng(2)
    models = {"weak-v1": _model("weak-v1", rng, 0.2), "strong-v2": _model("strong-v2", rng, 0.6)}
    table = metrics.build_calibration(rng.normal(0, 0.1, 5000), "strong-v2")
    counts = {
        "protocol": {"gallery": 40, "mated_probes": 60, "nonmated_probes": 20},
        "pairs": 600,
        "templates_computed": 0,
        "acquisition": {
            "images": 100,
            "found_on_retry": 1,
            "gallery_fte": 0,
            "mated_probe_fta": 0,
            "nonmated_probe_fta": 0,
        },
        "quality_gate_would_flag": {
            "mated_probes": {"sharpness": 2, "any": 2, "of": 60},
            "nonmated_probes": {"any": 0, "of": 20},
        },
    }
    return LfwReport("strong-v2", models, {}, counts, table, {"templates": 1.0}).as_dict()


def test_report_pages_and_plots_are_generated(tmp_path: Path) -> None:
    report = _report()
    assert report["model_id"] == "strong-v2"
    for key in ("verification_accuracy", "tar_at_fmr_1e-3", "fnir_rank1", "fnir_at_fpir_0.01"):
        assert isinstance(report[key], float)
    written = write_report(report, tmp_path)
    assert {p.name for p in written} == {"accuracy.md", "models.md", "lfw-cmc.png", "lfw-det.png"}
    for png in tmp_path.glob("img/*.png"):
        assert png.read_bytes().startswith(b"\x89PNG")
    page = (tmp_path / "accuracy.md").read_text()
    assert "**strong-v2** (default)" in page and "weak-v1" in page
    assert "not an identification" in " ".join(page.replace("**", "").split())
    assert "do not edit by hand" in page
    models = (tmp_path / "models.md").read_text()
    assert "| `fusion-v1` |" in models and "SHA-256" in models
