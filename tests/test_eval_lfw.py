"""The LFW runner end to end, on a miniature LFW made of real LFW images."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from facelead.eval.cache import TemplateCache
from facelead.eval.lfw import default_pool, run_lfw
from facelead.eval.protocol import read_lfw_images


def _mini_lfw(lfw: Path, root: Path) -> None:
    """12 people with 2+ images (2 each), 6 single-image people, 2 folds of 5 + 5 pairs."""
    people = read_lfw_images(lfw)
    multi = [n for n, p in people.items() if len(p) >= 2][:12]
    singles = [n for n, p in people.items() if len(p) == 1][:6]
    root.mkdir()
    (root / "images").symlink_to(lfw / "images")
    rows = ["path,identity,n_images_identity,sex_afifi,race_usc"]
    for name in multi:
        rows += [f"images/{name}/{p.name},{name},2,," for p in people[name][:2]]
    rows += [f"images/{name}/{people[name][0].name},{name},1,," for name in singles]
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    number = {name: [int(p.stem[-4:]) for p in people[name][:2]] for name in multi}
    lines = ["2\t5"]
    for fold in range(2):
        group = multi[fold * 6 : fold * 6 + 6]
        lines += [f"{n}\t{number[n][0]}\t{number[n][1]}" for n in group[:5]]
        lines += [
            f"{a}\t{number[a][0]}\t{b}\t{number[b][1]}" for a, b in itertools.pairwise(group[:6])
        ]
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")


@pytest.mark.models
def test_lfw_runner_on_a_miniature_lfw(lfw_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "mini"
    _mini_lfw(lfw_dir, root)
    cache = TemplateCache(tmp_path / "cache")
    report = run_lfw(root, "sface-v1", cache, workers=1, pool=("sface",))
    body = report.as_dict()
    assert body["model_id"] == "sface-v1"
    assert body["counts"]["protocol"]["gallery"] == 12 + 3
    assert body["counts"]["protocol"]["mated_probes"] == 12
    assert body["counts"]["protocol"]["nonmated_probes"] == 3
    assert body["counts"]["pairs"] == 20
    assert body["verification_accuracy"] >= 0.9
    assert body["fnir_rank1"] <= 0.2
    assert set(body["models"]) == {"sface-v1"}
    assert body["selection"]["pool"] == ["sface"]
    assert all(w == [1.0] for w in body["selection"]["verification_cv"]["fold_weights"])
    assert report.calibration.model_id == "sface-v1"
    again = run_lfw(root, "sface-v1", cache, workers=1, pool=("sface",), select=False)
    assert again.as_dict()["counts"]["templates_computed"] == 0
    assert again.as_dict()["fnir_rank1"] == body["fnir_rank1"]


def test_a_plain_run_extracts_only_the_models_own_members() -> None:
    """The runtime goal: a first `facelead eval lfw` embeds every photo once per member of
    the model (a centred member through its base), not with every model of the docs."""
    assert default_pool("fusion-v5") == ("sface-flip", "facenet-v2")
    assert default_pool("fusion-v2") == ("sface-flip", "dlib-v2")
    assert default_pool("sface-v1") == ("sface",)
