"""Score -> estimated-FMR tables shipped with FaceLead, one JSON file per model id.

A raw similarity score means nothing to an examiner; "about 1 impostor in
100,000 scores this high" does. Each table is measured by ``facelead eval lfw``
from impostor comparisons (see docs/accuracy.md) and stored as package data,
``<model_id>.json``, so a model change can never reuse another model's table.
"""

from __future__ import annotations

import importlib.resources
import re
from pathlib import Path

from facelead.errors import ConfigurationError
from facelead.eval.metrics import CalibrationTable

_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PACKAGE_FOLDER = Path(__file__).resolve().parent


def _file_name(model_id: str) -> str:
    if not _MODEL_ID.match(model_id):
        raise ConfigurationError(f"not a model id: {model_id!r}", code="unknown_model")
    return f"{model_id}.json"


def load_calibration(model_id: str) -> CalibrationTable | None:
    """The shipped table of *model_id*, or None when it has never been calibrated.

    A table whose recorded model id differs from its file name is refused: showing
    one model's FMRs next to another model's scores would mislead every examiner.
    """
    resource = importlib.resources.files(__package__).joinpath(_file_name(model_id))
    if not resource.is_file():
        return None
    table = CalibrationTable.from_json(resource.read_text(encoding="utf-8"))
    if table.model_id != model_id:
        raise ConfigurationError(
            f"calibration file for {model_id} holds model {table.model_id}",
            code="calibration_mismatch",
        )
    return table


def write_calibration(table: CalibrationTable, folder: Path = PACKAGE_FOLDER) -> Path:
    """Write ``<model_id>.json`` into *folder* (the package folder by default)."""
    path = folder / _file_name(table.model_id)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(table.to_json() + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
