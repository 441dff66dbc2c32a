"""The composition: detect -> choose a face -> quality -> embed per model -> fuse."""

from __future__ import annotations

from dataclasses import dataclass

from facelead.biometrics.detect import YuNetDetector
from facelead.biometrics.embed import EMBEDDERS, Embedder
from facelead.biometrics.fusion import FusionConfig, fuse, model_config
from facelead.biometrics.quality import QualityFloor, assess
from facelead.biometrics.types import Face, QualityReport, RGBImage, Vector


@dataclass(frozen=True)
class FaceAnalysis:
    face: Face
    quality: QualityReport
    template: Vector
    model_id: str


class FacePipeline:
    """One per process: models load lazily on first use, then stay loaded."""

    def __init__(self, model_id: str, floor: QualityFloor | None = None) -> None:
        self.config: FusionConfig = model_config(model_id)
        self.floor = floor or QualityFloor()
        self.detector = YuNetDetector()
        self.embedders: dict[str, Embedder] = {n: EMBEDDERS[n]() for n in self.config.names}

    @property
    def model_id(self) -> str:
        return self.config.model_id

    def detect(self, image: RGBImage) -> list[Face]:
        return self.detector.predict(image)

    def embed_members(self, image: RGBImage, face: Face) -> dict[str, Vector]:
        return {name: model.embed(image, face) for name, model in self.embedders.items()}

    def analyse(self, image: RGBImage, face: Face) -> FaceAnalysis:
        quality = assess(image, face, self.floor)
        template = fuse(self.config, self.embed_members(image, face))
        return FaceAnalysis(face, quality, template, self.model_id)
