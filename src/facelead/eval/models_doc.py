"""docs/models.md: every model's provenance beside its measured accuracy, generated.

Provenance (package, version, file, SHA-256, licence) comes from the pinned
weight records in :mod:`facelead.biometrics.weights`, so the page can never
disagree with what the code verifies before loading. Published figures and
training data are the model authors' own statements, kept here as data with
their source; measured figures come from the LFW run's JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from facelead.biometrics.embed import EMBEDDERS
from facelead.biometrics.fusion import MODEL_CONFIGS
from facelead.biometrics.weights import YUNET, WeightFile


@dataclass(frozen=True)
class Published:
    architecture: str
    training_data: str
    accuracy: str


PUBLISHED: dict[str, Published] = {
    "face_recognition_sface_2021dec.onnx": Published(
        "MobileFaceNet trained with the SFace loss (Zhong et al., IEEE TIP 2021), 128-d",
        "not stated in the OpenCV Zoo model card (the SFace paper trains on CASIA-WebFace, "
        "VGGFace2 and MS1MV2)",
        "LFW 99.40% (OpenCV Zoo model card, tools/eval)",
    ),
    "graph_final.pb": Published(
        "Inception-ResNet-v1, 512-d (davidsandberg/facenet, frozen for OpenCV DNN by the "
        "package author)",
        "CASIA-WebFace (about 0.45 M images of 10,575 people): the package's README says "
        "it holds checkpoint 20180408-102900, not the VGGFace2 one (20180402-114759) that "
        "earlier versions of this page named",
        "LFW 99.05% for 20180408-102900 (davidsandberg/facenet README; MTCNN crops, flipped "
        "images, fixed standardisation, mean embedding subtracted)",
    ),
    "dlib_face_recognition_resnet_model_v1.dat": Published(
        "ResNet-34 variant, 128-d (dlib, Davis King 2017)",
        "about 3 M faces: FaceScrub, the VGG face data set and images scraped from the web",
        "LFW 99.38% (dlib release notes)",
    ),
    "face_detection_yunet_2023mar.onnx": Published(
        "YuNet face detector with five landmarks (Wu et al. 2023)",
        "WIDER FACE",
        "see the OpenCV Zoo model card (WIDER FACE AP)",
    ),
}


ALIGNMENT: dict[str, str] = {
    "sface": "112 px five-point similarity crop (ArcFace template); one view.",
    "facenet": "160 px five-point crop zoomed out 25% (eyes 40 px apart at y = 75); "
    "per-image prewhitening; one view.",
    "dlib": "dlib 5-point shape predictor on YuNet's box, 150 px chip (padding 0.25); one view.",
    "sface-flip": "as `sface`, plus the mirrored crop; the two normalised features averaged.",
    "facenet-v2": "YuNet box grown by 27% of its width, resized to 160 x 160 without keeping "
    "the aspect ratio (as the authors' MTCNN crops); fixed standardisation (x - 127.5) / 128; "
    "crop and mirror averaged. Dev subset TAR @ FMR=1e-3: 0.95, against 0.90 for the best "
    "aspect-preserving five-point crop and 0.63 for `facenet`.",
    "dlib-v2": "YuNet's box mapped to dlib's HOG-detector convention (square, side 1.136 w, "
    "centre shifted -0.027 w, +0.039 h; medians over 298 LFW faces) before the 5-point "
    "predictor; chip and mirror averaged.",
    "sface-flip-c1": "`sface-flip`, then measured from the shipped centre `lfw-sexblend-v1` "
    "(subtract, re-normalise; biometrics/centre.py, docs/fairness.md mitigation 3).",
    "facenet-v2-c1": "`facenet-v2`, then measured from the shipped centre `lfw-sexblend-v1` "
    "(as FaceNet's authors subtract the mean embedding on LFW; here the centre is a "
    "blend of the women's and men's means chosen for equal false match rates).",
    "sface-flip-c2": "`sface-flip`, then measured from the shipped centre `lfw-sexblend-v2` "
    "(the blend chosen for fusion-v5's weights; docs/fairness.md mitigation 3).",
    "facenet-v2-c2": "`facenet-v2`, then measured from the shipped centre `lfw-sexblend-v2`.",
}
"""How each embedder crops and post-processes a face (see biometrics/embed.py, align.py)."""


def _weight_rows(weights: tuple[WeightFile, ...]) -> list[str]:
    rows = []
    for w in weights:
        name = w.relpath.rsplit("/", 1)[-1]
        facts = PUBLISHED.get(name)
        rows.append(
            f"| `{name}` | `{w.distribution}` | `{w.sha256}` | {w.licence} | "
            f"{facts.training_data if facts else '—'} | {facts.accuracy if facts else '—'} |"
        )
    return rows


def _measured(report: Mapping[str, Any], model_id: str) -> str:
    model = report.get("models", {}).get(model_id)
    if model is None:
        return "not measured in the last run"
    v, i = model["verification"], model["identification"]
    return (
        f"LFW 1:1 {100 * v['mean_accuracy']:.2f}% ± {100 * v['std_accuracy']:.2f}; 1:N FNIR "
        f"rank 1 {100 * i['fnir_at_rank']['1']:.2f}%, @FPIR=0.01 "
        f"{100 * i['fnir_at_fpir']['0.01']:.2f}%"
    )


def render_models(report: Mapping[str, Any]) -> str:
    """The whole page: weight files, embedders (with versions), model ids."""
    lines = [
        "# Face models",
        "",
        "<!-- Generated by `facelead eval lfw --report docs/`; do not edit by hand. -->",
        "",
        "Every weight file comes from a pinned registry package and is refused unless its "
        "SHA-256 matches (`src/facelead/biometrics/weights.py`). A template records its model "
        "id; a changed weight file, alignment or weighting is a new model id, never a silent "
        "change.",
        "",
        "## Weight files",
        "",
        "| File | Package | SHA-256 | Licence | Training data | Published accuracy |",
        "|---|---|---|---|---|---|",
    ]
    seen: list[WeightFile] = [YUNET]
    for factory in EMBEDDERS.values():
        seen.extend(w for w in factory().weights if w not in seen)
    lines += _weight_rows(tuple(seen))
    lines += [
        "",
        "## Embedders (template versions)",
        "",
        "| Embedder | Version | Architecture | Alignment and test-time processing |",
        "|---|---|---|---|",
    ]
    for name, factory in EMBEDDERS.items():
        embedder = factory()
        facts = PUBLISHED.get(embedder.weights[0].relpath.rsplit("/", 1)[-1])
        how = ALIGNMENT.get(name, "—")
        lines.append(
            f"| `{name}` | `{embedder.version}` | {facts.architecture if facts else '—'} | {how} |"
        )
    lines += [
        "",
        "## Model ids",
        "",
        f"Default: **{report.get('model_id', '?')}** (`FACELEAD_MODEL_ID`). Measured accuracy "
        "is from the last `facelead eval lfw` run (docs/accuracy.md).",
        "",
        "| Model id | Members x weight | Measured (LFW) |",
        "|---|---|---|",
    ]
    for model_id, config in MODEL_CONFIGS.items():
        members = " + ".join(f"`{n}` x{w:g}" for n, w in config.members)
        lines.append(f"| `{model_id}` | {members} | {_measured(report, model_id)} |")
    return "\n".join(lines) + "\n"
