"""Calibration tables: JSON round trip, package data for the default model id."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from facelead.config import Settings
from facelead.errors import ConfigurationError
from facelead.eval.calibration import load_calibration, write_calibration
from facelead.eval.metrics import CalibrationTable, build_calibration, estimated_fmr


def test_calibration_json_round_trip(tmp_path: Path) -> None:
    impostors = np.random.default_rng(0).normal(0.0, 0.1, 20_000)
    table = build_calibration(impostors, "test-model", points=40)
    path = write_calibration(table, tmp_path)
    assert path.name == "test-model.json"
    again = CalibrationTable.from_json(path.read_text())
    assert again == table
    assert not list(tmp_path.glob("*.tmp"))


def test_default_model_ships_a_calibration_table() -> None:
    model_id = Settings().model_id
    table = load_calibration(model_id)
    assert table is not None, f"no calibration/{model_id}.json: run facelead eval lfw --calibration"
    assert table.model_id == model_id
    assert table.n_impostors >= 1_000_000  # measured on LFW's 1:N impostor comparisons
    assert table.fmr[0] == pytest.approx(1.0)
    # a higher score never means a higher estimated FMR
    scores = np.linspace(table.thresholds[0], table.thresholds[-1], 50)
    estimates = [estimated_fmr(table, float(s)) for s in scores]
    assert all(a >= b for a, b in itertools.pairwise(estimates))


def test_unknown_or_malformed_model_ids() -> None:
    assert load_calibration("never-calibrated-model") is None
    with pytest.raises(ConfigurationError):
        load_calibration("../etc/passwd")
