"""Labelled faces of whole photos, and their framing into training faces: by the face
detector exactly as `detect` frames them, never from their own labels (a net trained on faces
framed by their own labels learns where that framing puts the points, and on photos the
detector frames faces otherwise).

The detector lives in `photos`, above this layer: whoever reads photo data (the API, the CLI)
hands the framing in through `set_framer` (`photos.labelled.frame_photo`). A face the detector
misses is framed from its labels' box instead (the box drawn around it, else its points'), and
counted (`Faces.framing`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import geometry
from ..errors import DataError, UserError
from ..geometry import Box
from ..keypoints import IMAGE_SIZE, scale
from ..schemes import Scheme
from .faces import Faces


@dataclass
class LabelledFace:
    """One face of a photo: its points (NaN where unlabelled), the box drawn around it where the
    data gives one, who it is where the data says, and where it was read (for messages)."""

    image: Path
    points: np.ndarray  # (points, 2) photo pixels, pixel centres at integers
    box: Box | None = None
    person: str | None = None
    row: int = 0  # 1-based: the annotation, file or CSV row it came from


@dataclass
class Framed:
    """What the framer gives for one face: its 96x96 grey crop in [0, 1], the 2x3 affine from
    photo pixels to crop pixels, and whether the detector found it."""

    crop: np.ndarray
    matrix: np.ndarray
    detected: bool


# image, its faces -> their crops: detect's own framing (photos.labelled.frame_photo)
Framer = Callable[[Path, list[LabelledFace]], list[Framed]]
_FRAMER: list[tuple[Framer, str]] = []


def set_framer(framer: Framer, name: str = "blazeface") -> None:
    """The framing of faces in photos, by the detector `name` (the API sets BlazeFace's, as
    `detect` frames faces); the run's data record names it."""
    _FRAMER[:] = [(framer, name)]


def points_box(face: LabelledFace) -> Box:
    """The bounding box of a face's labelled points."""
    points = face.points[~np.isnan(face.points).any(axis=1)]
    low, high = points.min(axis=0), points.max(axis=0)
    return Box(float(low[0]), float(low[1]), float(high[0] - low[0]), float(high[1] - low[1]),
               0.0)


def frame_faces(faces: list[LabelledFace], scheme: Scheme, path: str | Path) -> Faces:
    """Training faces (X, y) of labelled photos, each framed by the framer set (the detector),
    photo by photo; persons from the data, else each photo its own group (a split never puts
    one photo's faces on both sides)."""
    if not _FRAMER:
        raise UserError(f"{path}: whole photos need the face detector to frame them; read them "
                        "through facekeypoints' API or CLI (fk.train, fk.load)")
    if not faces:
        raise DataError(path, "holds no labelled face")
    by_image: dict[Path, list[int]] = {}
    for i, face in enumerate(faces):
        if np.isnan(face.points).all():
            raise DataError(path, "a face with no labelled point", face.row)
        by_image.setdefault(face.image, []).append(i)
    X = np.empty((len(faces), IMAGE_SIZE, IMAGE_SIZE, 1), np.float32)
    y = np.empty((len(faces), 2 * len(scheme.points)), np.float32)
    low, high = scheme.bounds
    missed: list[str] = []
    framer, name = _FRAMER[0]
    for image, index in by_image.items():
        for i, framed in zip(index, framer(image, [faces[i] for i in index]), strict=True):
            X[i, ..., 0] = framed.crop
            points = geometry.apply(framed.matrix, faces[i].points)  # NaN stays NaN
            y[i] = scale(np.clip(points, low, high).reshape(-1))
            if not framed.detected:
                missed.append(f"{image.name} (row {faces[i].row})")
    base = Path(path) if Path(path).is_dir() else Path(path).parent
    persons = np.array([f.person if f.person is not None else f"photo:{_below(f.image, base)}"
                        for f in faces])
    framing = {"framed_by": name, "faces": len(faces), "photos": len(by_image),
               "framed_from_labels": len(missed), "missed_by_detector": missed}
    return Faces(X, y, scheme.columns, np.array([f.row for f in faces]), persons, str(path),
                 scheme, framing)


def _below(image: Path, base: Path) -> str:
    """A photo's name below the data's folder where it is there, else its whole path."""
    try:
        return image.relative_to(base).as_posix()
    except ValueError:
        return str(image)


def person_of_photo(name: str) -> str:
    """'Abdullah_Gul_50.jpg' and 'Abdullah_Gul_50_b.jpg' -> 'Abdullah_Gul' (the shared youtube
    photos' names), for files that say who is who by name."""
    return re.sub(r"_\d+(_b)?$", "", Path(name).stem)


def image_path(base: Path, name: str, path: str | Path, row: int) -> Path:
    """A photo named by a data file: relative to the file, or absolute; one that is not there
    is an error naming the file and row."""
    image = base / name if not Path(name).is_absolute() else Path(name)
    if not name or not image.is_file():
        raise DataError(path, f"no image {name!r} (paths are relative to the file, or absolute)",
                        row)
    return image
