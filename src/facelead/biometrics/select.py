"""Which face an action applies to. A search never guesses between people."""

from __future__ import annotations

from facelead.biometrics.types import Face
from facelead.errors import FaceError

COMPARABLE_AREA_RATIO = 0.25
"""A second face at least half as wide (a quarter the area) as the largest is
'comparable': a booking photo showing two such people cannot be attributed."""


def face_for_enrolment(faces: list[Face]) -> Face:
    """The booking subject's face; refuse when absent or ambiguous."""
    if not faces:
        raise FaceError("no face found in the photo", code="no_face")
    if len(faces) > 1 and faces[1].area >= COMPARABLE_AREA_RATIO * faces[0].area:
        raise FaceError(
            f"{len(faces)} faces of comparable size: a booking photo must show one person",
            code="multiple_faces",
            faces=[face.as_dict() for face in faces],
        )
    return faces[0]


def face_for_probe(faces: list[Face], index: int | None) -> tuple[int, Face]:
    """The face the requester chose; with several faces they must choose by index."""
    if not faces:
        raise FaceError("no face found in the probe", code="no_face")
    if index is None:
        if len(faces) > 1:
            raise FaceError(
                f"{len(faces)} faces found; choose one with its index (0 = largest)",
                code="face_choice_required",
                faces=[{"index": i, **face.as_dict()} for i, face in enumerate(faces)],
            )
        return 0, faces[0]
    if not 0 <= index < len(faces):
        raise FaceError(
            f"face index {index} out of range: {len(faces)} face(s) found",
            code="face_index_out_of_range",
            faces=[{"index": i, **face.as_dict()} for i, face in enumerate(faces)],
        )
    return index, faces[index]
