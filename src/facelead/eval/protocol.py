"""Evaluation protocols: which images are compared with which, decided from files alone.

Two protocols share one shape (:class:`IdentificationSplit`):

* LFW, from the official ``pairs.txt`` (10 folds for 1:1 verification) and the
  image list in ``metadata.csv`` (for the NIST-style 1:N split below).
* Any labelled folder, from a ``path,identity`` CSV, so an agency can run the
  same 1:N measurement on its own photos before use.

LFW 1:N (NIST IR 8271 style, small scale): the gallery holds the first image
of every person; every other image of a person with 2+ images is a mated
probe; a fixed, seeded half of the single-image people are kept OUT of the
gallery and searched as non-mated probes (people not enrolled). With LFW's
5,749 people that is a gallery of 3,715, 7,484 mated and 2,034 non-mated
probes. The half is drawn with ``numpy.random.default_rng(NONMATED_SEED)``
over the sorted names, so every run and every reader gets the same split.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facelead.errors import InputError

NONMATED_SEED = 8271
"""Seed of the non-mated half (the number of the NIST report the protocol follows)."""


@dataclass(frozen=True)
class Pair:
    """One verification pair of ``pairs.txt``: two image paths, mated or not, its fold."""

    first: Path
    second: Path
    mated: bool
    fold: int


@dataclass(frozen=True)
class IdentificationSplit:
    """A 1:N protocol: gallery images (one per enrolled identity) and the probes.

    ``gallery`` and ``mated`` are (path, identity) pairs; every mated identity is
    in the gallery; ``nonmated`` identities never are. ``distractors`` are extra
    gallery images of other, unnamed people (each its own gallery subject).
    """

    gallery: tuple[tuple[Path, str], ...]
    mated: tuple[tuple[Path, str], ...]
    nonmated: tuple[tuple[Path, str], ...]
    distractors: tuple[Path, ...] = ()
    mate_removed: bool = False
    """Also search every mated probe with its own identity left out of the gallery,
    as a non-mated search (for sets without held-out people)."""

    def __post_init__(self) -> None:
        enrolled = {identity for _, identity in self.gallery}
        if len(enrolled) != len(self.gallery):
            raise InputError("a gallery holds one image per identity")
        if any(identity not in enrolled for _, identity in self.mated):
            raise InputError("every mated probe's identity must be in the gallery")
        if any(identity in enrolled for _, identity in self.nonmated):
            raise InputError("a non-mated probe's identity must not be in the gallery")

    @property
    def counts(self) -> dict[str, int]:
        return {
            "gallery": len(self.gallery) + len(self.distractors),
            "gallery_identities": len(self.gallery),
            "distractors": len(self.distractors),
            "mated_probes": len(self.mated),
            "nonmated_probes": len(self.nonmated),
        }


def lfw_image(root: Path, name: str, number: int) -> Path:
    return root / "images" / name / f"{name}_{number:04d}.jpg"


def read_pairs(root: Path) -> list[Pair]:
    """The official 10 x (300 mated + 300 non-mated) pairs of LFW View 2."""
    path = root / "pairs.txt"
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if not lines or len(lines[0]) != 2:
        raise InputError(f"{path}: first line must be '<folds> <pairs per class>'")
    folds, per_class = int(lines[0][0]), int(lines[0][1])
    rows = lines[1:]
    if len(rows) != folds * 2 * per_class:
        raise InputError(f"{path}: expected {folds * 2 * per_class} pairs, found {len(rows)}")
    pairs = []
    for index, row in enumerate(rows):
        fold = index // (2 * per_class)
        if len(row) == 3:
            first, second = (
                lfw_image(root, row[0], int(row[1])),
                lfw_image(root, row[0], int(row[2])),
            )
            pairs.append(Pair(first, second, True, fold))
        elif len(row) == 4:
            first, second = (
                lfw_image(root, row[0], int(row[1])),
                lfw_image(root, row[2], int(row[3])),
            )
            pairs.append(Pair(first, second, False, fold))
        else:
            raise InputError(f"{path}: line {index + 2} is neither a mated nor a non-mated pair")
    return pairs


def read_lfw_images(root: Path) -> dict[str, list[Path]]:
    """identity -> its images sorted by file name, from ``metadata.csv``."""
    people: dict[str, list[Path]] = defaultdict(list)
    with (root / "metadata.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            people[row["identity"]].append(root / row["path"])
    return {name: sorted(paths, key=lambda p: p.name) for name, paths in sorted(people.items())}


def read_people_counts(root: Path) -> dict[str, int]:
    """identity -> image count from ``people.txt`` (used to cross-check metadata.csv)."""
    counts: dict[str, int] = {}
    for line in (root / "people.txt").read_text().splitlines():
        fields = line.split()
        if len(fields) == 2:
            counts[fields[0]] = counts.get(fields[0], 0) + int(fields[1])
    return counts


def lfw_identification(root: Path, seed: int = NONMATED_SEED) -> IdentificationSplit:
    """The LFW 1:N split described in the module docstring."""
    people = read_lfw_images(root)
    singles = sorted(name for name, paths in people.items() if len(paths) == 1)
    order = np.random.default_rng(seed).permutation(len(singles))
    held_out = {singles[i] for i in order[: len(singles) // 2]}
    gallery = tuple((paths[0], name) for name, paths in people.items() if name not in held_out)
    mated = tuple((p, name) for name, paths in people.items() for p in paths[1:])
    nonmated = tuple((people[name][0], name) for name in sorted(held_out))
    return IdentificationSplit(gallery, mated, nonmated)


def _image_paths(folder: Path) -> list[Path]:
    suffixes = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def read_distractors(source: Path) -> tuple[Path, ...]:
    """Every image under a folder, or the ``path`` column (or first column) of a CSV."""
    if source.is_dir():
        return tuple(_image_paths(source))
    if not source.is_file():
        raise InputError(f"no such distractor folder or CSV: {source}", code="not_found")
    with source.open(newline="") as handle:
        rows = [row for row in csv.reader(handle) if row and row[0].strip()]
    if rows and rows[0][0].strip().lower() == "path":
        rows = rows[1:]
    return tuple(_resolve(source.parent, row[0]) for row in rows)


def _resolve(base: Path, text: str) -> Path:
    path = Path(text.strip())
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise InputError(f"listed image not found: {path}", code="not_found")
    return path


def read_labelled_csv(csv_path: Path) -> list[dict[str, str]]:
    """Rows of a ``path,identity[,demographic columns...]`` CSV, paths made absolute."""
    if not csv_path.is_file():
        raise InputError(f"no such CSV: {csv_path}", code="not_found")
    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"path", "identity"} <= set(reader.fieldnames):
            raise InputError(f"{csv_path}: the header must include 'path' and 'identity'")
        rows = [dict(row) for row in reader]
    for row in rows:
        if not row["identity"] or not row["identity"].strip():
            raise InputError(f"{csv_path}: an identity is empty for {row['path']}")
        row["path"] = str(_resolve(csv_path.parent, row["path"]))
    return rows


def folder_identification(csv_path: Path, distractors: Path | None = None) -> IdentificationSplit:
    """Gallery = first image of each identity sorted by path; mated probes = the rest.

    Every identity is enrolled, as the CSV defines the gallery, so there are no
    held-out people. Non-mated searches are therefore made the standard
    "mate removed" way (see :attr:`IdentificationSplit.mate_removed`): each
    mated probe is also scored against the gallery without its own identity.
    """
    rows = read_labelled_csv(csv_path)
    by_identity: dict[str, list[Path]] = defaultdict(list)
    for row in rows:
        by_identity[row["identity"].strip()].append(Path(row["path"]))
    gallery: list[tuple[Path, str]] = []
    mated: list[tuple[Path, str]] = []
    for identity, paths in sorted(by_identity.items()):
        ordered = sorted(paths)
        gallery.append((ordered[0], identity))
        mated.extend((p, identity) for p in ordered[1:])
    if not mated:
        raise InputError(f"{csv_path}: no identity has two or more images, nothing to search")
    extra = read_distractors(distractors) if distractors else ()
    return IdentificationSplit(tuple(gallery), tuple(mated), (), extra, mate_removed=True)
