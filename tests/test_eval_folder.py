"""`facelead eval folder` on real booking photos (NIST MEDS-II), through the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facelead.cli.main import app
from facelead.eval.cache import TemplateCache
from facelead.eval.folder import run_folder

MEDS_NAME = re.compile(r"S(\d+)-(\d+)-t10_(\d+)\.jpg$")
KEYS = ("verification_accuracy", "tar_at_fmr_1e-3", "fnir_rank1", "fnir_at_fpir_0.01", "model_id")


def _frontal(meds: Path) -> list[tuple[Path, str, str]]:
    """(path, subject, encounter) of MEDS frontal photos (record 01 of each booking)."""
    rows = []
    for path in sorted(meds.glob("*.jpg")):
        match = MEDS_NAME.search(path.name)
        assert match, path
        subject, encounter, record = match.groups()
        if record == "01":
            rows.append((path, f"S{subject}", encounter))
    return rows


def _meds_csv(meds: Path, folder: Path, skip: frozenset[str] = frozenset()) -> Path:
    """Frontal MEDS photos with subject ids (absolute paths), minus the *skip* subjects."""
    lines = ["path,identity,encounter"]
    for path, subject, encounter in _frontal(meds):
        if subject not in skip:
            lines.append(f"{path.resolve()},{subject},{encounter}")
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / "meds.csv"
    csv_path.write_text("\n".join(lines) + "\n")
    return csv_path


@pytest.mark.models
def test_folder_runner_on_meds(meds_dir: Path, tmp_path: Path) -> None:
    csv_path = _meds_csv(meds_dir, tmp_path / "labels")
    cache = TemplateCache(tmp_path / "cache")
    body = run_folder(csv_path, "sface-v1", cache, workers=1)
    protocol = body["counts"]["protocol"]
    assert protocol["gallery"] == 50  # one frontal photo per subject
    assert protocol["mated_probes"] == len(csv_path.read_text().splitlines()) - 1 - 50
    assert body["counts"]["templates_computed"] > 0
    for key in KEYS:
        assert key in body
    assert body["fnir_rank1"] <= 0.15  # booking photos of the same people: easy for SFace
    assert 0.0 <= body["fnir_at_fpir_0.01"] <= 1.0
    assert body["verification_accuracy"] is not None and body["verification_accuracy"] > 0.9
    groups = body["demographics"]["encounter"]
    assert sum(g["mated_probes"] for g in groups.values()) == protocol["mated_probes"]
    again = run_folder(csv_path, "sface-v1", cache, workers=1)
    assert again["counts"]["templates_computed"] == 0  # all from the cache
    assert again["fnir_rank1"] == body["fnir_rank1"]


@pytest.mark.models
def test_folder_command_with_distractors(meds_dir: Path, tmp_path: Path) -> None:
    others = frozenset({"S002", "S003", "S004"})  # single-booking subjects: other people
    csv_path = _meds_csv(meds_dir, tmp_path / "labels", skip=others)
    distractors = tmp_path / "distractors.csv"
    photos = [str(p) for p, subject, _ in _frontal(meds_dir) if subject in others]
    distractors.write_text("path\n" + "\n".join(photos) + "\n")
    out = tmp_path / "out.json"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "folder",
            str(csv_path),
            "--distractors",
            str(distractors),
            "--json",
            str(out),
            "--model",
            "sface-v1",
            "--cache",
            str(tmp_path / "cache"),
            "--workers",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(out.read_text())
    assert body["model_id"] == "sface-v1"
    assert body["counts"]["protocol"]["distractors"] == 3
    assert body["counts"]["protocol"]["gallery"] == 47 + 3
    for key in KEYS:
        assert key in body


def test_folder_command_refuses_a_missing_csv(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "folder", str(tmp_path / "none.csv")])
    assert result.exit_code == 2
