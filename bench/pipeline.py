"""Time per stage of the face pipeline on the NIST MEDS-II booking photos.

Stages: decode, detect, align (the 5-point similarity warp), embed per model
(each embedder's own alignment + inference), fuse, and exact index search over
the MEDS templates. Prints a table and writes bench/results/pipeline.json.

    .venv/bin/python bench/pipeline.py [--meds ../shared/data/meds] [--model fusion-v1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from facelead.biometrics.align import arcface_crop
from facelead.biometrics.decode import decode_image
from facelead.biometrics.fusion import fuse
from facelead.biometrics.pipeline import FacePipeline
from facelead.index.flat import FlatIndex

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MEDS = ROOT.parent / "shared" / "data" / "meds"
T = TypeVar("T")


def timed(samples: dict[str, list[float]], stage: str, call: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = call()
    samples.setdefault(stage, []).append((time.perf_counter() - start) * 1000.0)
    return result


def summarise(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(values),
        "mean_ms": round(statistics.fmean(values), 2),
        "p50_ms": round(ordered[len(ordered) // 2], 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
    }


def run(meds: Path, model_id: str) -> dict[str, Any]:
    pipeline = FacePipeline(model_id)
    pipeline.detector.load()
    for embedder in pipeline.embedders.values():
        embedder.load()  # model loading is reported separately, not per image
    samples: dict[str, list[float]] = {}
    templates, subjects = [], []
    for path in sorted(meds.glob("*.jpg")):
        data = path.read_bytes()
        pixels = timed(samples, "decode", partial(decode_image, data)).pixels
        faces = timed(samples, "detect", partial(pipeline.detect, pixels))
        if not faces:
            continue
        face = faces[0]
        timed(samples, "align (5-point warp)", partial(arcface_crop, pixels, face))
        vectors = {}
        for name, embedder in pipeline.embedders.items():
            vectors[name] = timed(samples, f"embed {name}", partial(embedder.embed, pixels, face))
        templates.append(timed(samples, "fuse", partial(fuse, pipeline.config, vectors)))
        subjects.append(int(path.name[1:4]))
    matrix = np.stack(templates)
    index = FlatIndex(
        model_id, 1, matrix, np.arange(len(matrix)), np.asarray(subjects, dtype=np.int64)
    )
    for query in matrix:
        timed(
            samples,
            f"index search ({len(matrix)} templates, k=20)",
            partial(index.search, query, 20),
        )
    return {
        "model_id": model_id,
        "images": len(list(meds.glob("*.jpg"))),
        "faces": len(templates),
        "template_dim": int(matrix.shape[1]),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "stages": {stage: summarise(values) for stage, values in samples.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--meds", type=Path, default=Path(os.environ.get("FACELEAD_MEDS", DEFAULT_MEDS))
    )
    parser.add_argument("--model", default=os.environ.get("FACELEAD_MODEL_ID", "fusion-v1"))
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "pipeline.json")
    args = parser.parse_args()
    if not args.meds.is_dir():
        print(f"MEDS images not found at {args.meds}; pass --meds DIR")
        return 1
    report = run(args.meds, args.model)
    print(
        f"{report['faces']} faces from {report['images']} MEDS images, model {report['model_id']}"
    )
    print(f"{'stage':44} {'mean ms':>9} {'p50 ms':>9} {'p95 ms':>9}")
    for stage, row in report["stages"].items():
        print(f"{stage:44} {row['mean_ms']:9.2f} {row['p50_ms']:9.2f} {row['p95_ms']:9.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
