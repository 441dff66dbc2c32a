"""LFW and folder protocols: who is in the gallery, who is searched, from files alone."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from facelead.errors import InputError
from facelead.eval.protocol import (
    IdentificationSplit,
    folder_identification,
    lfw_identification,
    read_distractors,
    read_pairs,
    read_people_counts,
)


def test_lfw_pairs_follow_view_2(lfw_dir: Path) -> None:
    pairs = read_pairs(lfw_dir)
    assert len(pairs) == 6000
    per_fold = Counter((p.fold, p.mated) for p in pairs)
    assert set(per_fold.values()) == {300} and len(per_fold) == 20
    assert all(p.first.is_file() and p.second.is_file() for p in pairs)
    assert all((p.first.parent == p.second.parent) == p.mated for p in pairs)


def test_lfw_identification_counts_match_the_published_protocol(lfw_dir: Path) -> None:
    split = lfw_identification(lfw_dir)
    assert split.counts == {
        "gallery": 3715,
        "gallery_identities": 3715,
        "distractors": 0,
        "mated_probes": 7484,
        "nonmated_probes": 2034,
    }
    people = read_people_counts(lfw_dir)
    assert sum(people.values()) == 13233
    gallery = {identity for _, identity in split.gallery}
    assert all(people[i] == 1 for _, i in split.nonmated)
    assert not gallery & {i for _, i in split.nonmated}
    assert all(path.name.endswith("_0001.jpg") for path, _ in split.gallery)
    assert not {p for p, _ in split.gallery} & {p for p, _ in split.mated}
    assert lfw_identification(lfw_dir) == split  # seeded: the same split every time


def _fake_lfw(root: Path, counts: dict[str, int]) -> None:
    lines = ["path,identity,n_images_identity,sex_afifi,race_usc"]
    for name, n in counts.items():
        for k in range(1, n + 1):
            lines.append(f"images/{name}/{name}_{k:04d}.jpg,{name},{n},M,")
    root.mkdir(parents=True, exist_ok=True)
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")


def test_lfw_identification_on_a_small_made_up_set(tmp_path: Path) -> None:
    counts = {"A": 3, "B": 2, "C": 1, "D": 1, "E": 1, "F": 1, "G": 1}
    _fake_lfw(tmp_path, counts)
    split = lfw_identification(tmp_path)
    assert split.counts["nonmated_probes"] == 2  # half of the five single-image people
    assert split.counts["gallery"] == 2 + 3
    assert split.counts["mated_probes"] == 2 + 1
    other_seed = lfw_identification(tmp_path, seed=1)
    assert other_seed.counts == split.counts


def test_split_refuses_inconsistent_protocols(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    with pytest.raises(InputError):
        IdentificationSplit(((a, "x"),), ((b, "y"),), ())
    with pytest.raises(InputError):
        IdentificationSplit(((a, "x"),), (), ((b, "x"),))
    with pytest.raises(InputError):
        IdentificationSplit(((a, "x"), (b, "x")), (), ())


def _images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"\xff\xd8\xff")


def test_folder_protocol_gallery_is_first_image_by_path(tmp_path: Path) -> None:
    _images(tmp_path / "photos", ["p1b.jpg", "p1a.jpg", "p2.jpg", "p3a.jpg", "p3b.jpg"])
    (tmp_path / "labels.csv").write_text(
        "path,identity,sex\nphotos/p1b.jpg,one,F\nphotos/p1a.jpg,one,F\nphotos/p2.jpg,two,M\n"
        "photos/p3a.jpg,three,M\nphotos/p3b.jpg,three,M\n"
    )
    _images(tmp_path / "extra" / "sub", ["d1.png", "d2.jpg"])
    split = folder_identification(tmp_path / "labels.csv", tmp_path / "extra")
    assert sorted(p.name for p, _ in split.gallery) == ["p1a.jpg", "p2.jpg", "p3a.jpg"]
    assert sorted(p.name for p, _ in split.mated) == ["p1b.jpg", "p3b.jpg"]
    assert split.mate_removed and not split.nonmated
    assert [p.name for p in split.distractors] == ["d1.png", "d2.jpg"]
    (tmp_path / "d.csv").write_text("path\nextra/sub/d2.jpg\n")
    assert read_distractors(tmp_path / "d.csv") == (tmp_path / "extra" / "sub" / "d2.jpg",)


def test_folder_protocol_refuses_bad_csvs(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("file,who\na.jpg,x\n")
    with pytest.raises(InputError):
        folder_identification(tmp_path / "bad.csv")
    (tmp_path / "missing.csv").write_text("path,identity\nnope.jpg,x\n")
    with pytest.raises(InputError) as info:
        folder_identification(tmp_path / "missing.csv")
    assert info.value.code == "not_found"
    _images(tmp_path, ["a.jpg", "b.jpg"])
    (tmp_path / "singles.csv").write_text("path,identity\na.jpg,x\nb.jpg,y\n")
    with pytest.raises(InputError):
        folder_identification(tmp_path / "singles.csv")
