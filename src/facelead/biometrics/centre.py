"""Template centres: each member's vectors measured from a fixed point, not from the origin.

Cosine similarity measures angles from the origin, and a face model's vectors
do not sit around the origin: they share a common component. Issue 9 found
that component is not neutral. Women's templates share more of it with each
other than men's do, so women's impostor comparisons score higher and, at one
global threshold, women's false match rate was about twice men's.

Subtracting a fixed centre vector from every template (then re-normalising)
removes that shared component. The centre is one vector per member model,
the same for every face: matching never reads a demographic field. The centre
itself is a blend of the mean template of the women and of the men of a
labelled set (LFW), fitted by ``facelead eval centre``; the blend was chosen on
half of the people and checked on the other half (docs/fairness.md). Like a
model's weights, a centre file ships inside the package and is trusted only if
its SHA-256 equals the value pinned here; a new centre means a new model id.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facelead.biometrics.weights import sha256_file
from facelead.errors import ModelIntegrityError

CENTRES_DIR = Path(__file__).parent / "centres"
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
"""Date of every entry of a written centre file (the earliest a zip can hold)."""


@dataclass(frozen=True)
class CentreFile:
    """One shipped centre file: its name under ``biometrics/centres/`` and pinned digest."""

    name: str
    sha256: str
    directory: Path = CENTRES_DIR

    @property
    def path(self) -> Path:
        return self.directory / f"{self.name}.npz"


CENTRE_LFW_V1 = CentreFile(
    "lfw-sexblend-v1",
    "7a05202b46d63e995c76cb13a1ff3ac126813223ac5124dd5238e267ba043ff5",
)
"""Fitted on LFW's sex-labelled people (one photo each) for sface-flip and facenet-v2,
with the blend chosen for fusion-v4's weights (0.7 / 0.3)."""

CENTRE_LFW_V2 = CentreFile(
    "lfw-sexblend-v2",
    "a03d6a0c484c7314612c0e2c6c8fa2208cc8ebe3bbd1adbb458dfce2db0782d0",
)
"""As v1, with the blend chosen for fusion-v5's cross-validated weights (0.8 / 0.2)."""


@cache
def load_centres(file: CentreFile) -> dict[str, NDArray[np.float32]]:
    """Member name -> centre vector, after the file's SHA-256 is checked (once per process)."""
    if not file.path.is_file():
        raise ModelIntegrityError(f"centre file {file.path} is missing", code="model_missing")
    actual = sha256_file(file.path)
    if actual != file.sha256:
        raise ModelIntegrityError(
            f"{file.path.name}: SHA-256 {actual}, pinned {file.sha256}", code="model_integrity"
        )
    with np.load(file.path, allow_pickle=False) as data:
        return {
            key.removeprefix("centre/"): np.asarray(data[key], dtype=np.float32)
            for key in data.files
            if key.startswith("centre/")
        }


def centre_metadata(file: CentreFile) -> dict[str, float]:
    """How the centre was fitted (blend, people counts), from the verified file."""
    load_centres(file)
    with np.load(file.path, allow_pickle=False) as data:
        return {key.removeprefix("meta/"): float(data[key]) for key in data.files if "meta/" in key}


def centred(vector: NDArray[np.float32], centre: NDArray[np.float32]) -> NDArray[np.float32]:
    """*vector* minus *centre*, L2-normalised again (a zero difference stays zero)."""
    difference = np.asarray(vector, dtype=np.float32).reshape(-1) - centre
    norm = float(np.linalg.norm(difference))
    return difference / norm if norm > 0 else difference


def centred_rows(matrix: NDArray[np.float32], centre: NDArray[np.float32]) -> NDArray[np.float32]:
    """:func:`centred` on every row; all-zero rows (no face) stay zero."""
    has_face = np.any(matrix != 0, axis=1, keepdims=True)
    difference = matrix - centre
    norms = np.linalg.norm(difference, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.where(has_face, difference / norms, 0.0).astype(np.float32)


def write_centres(
    path: Path, centres: dict[str, NDArray[np.floating]], metadata: dict[str, float]
) -> str:
    """Write a centre file and return its SHA-256 (to pin in :data:`CENTRE_LFW_V1`).

    The bytes depend on the arrays alone: ``np.savez`` stamps each zip entry with the
    time of writing, so refitting the very same centre gave a new digest and so, by the
    pinning rule, a new model id. Entries here carry a fixed date and a fixed order.
    """
    arrays: dict[str, Any] = {
        f"centre/{name}": np.asarray(vector, dtype=np.float32) for name, vector in centres.items()
    }
    arrays |= {f"meta/{key}": np.asarray(v, dtype=np.float64) for key, v in metadata.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for key in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, arrays[key], allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{key}.npy", FIXED_ZIP_TIME), buffer.getvalue())
    tmp.replace(path)
    return sha256_file(path)
