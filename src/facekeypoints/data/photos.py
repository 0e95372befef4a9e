"""Whole photographs with their faces' points as training data: a COCO keypoints file, an iBUG
`.pts` folder or a CSV of photo paths and points, each face framed by the detector as `detect`
frames it (`labelled.frame_faces`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError, UserError
from ..geometry import Box
from ..schemes import Scheme
from ..schemes import load as load_scheme
from . import kaggle
from .coco import read_coco
from .faces import Faces
from .kaggle import cached_faces, parse_numbers, read_csv, scheme_of
from .labelled import LabelledFace, frame_faces, image_path
from .pts import read_folder


def read_photo_csv(path: str | Path, scheme: Scheme | None = None
                   ) -> tuple[list[LabelledFace], Scheme]:
    """A CSV of photos and points, a row per face: `file` (relative to the CSV or absolute),
    a scheme's columns (p0_x, ... or Kaggle's), and optionally `person` and a face box
    (box_left, box_top, box_width, box_height); a blank coordinate is an unlabelled point."""
    frame = read_csv(path)
    others = {"file", "face", "person", "box_left", "box_top", "box_width", "box_height"}
    scheme = scheme or scheme_of([c for c in frame.columns if c not in others], path)
    missing = [c for c in scheme.columns if c not in frame.columns]
    if missing:
        raise DataError(path, f"missing column(s) {', '.join(missing[:4])}; scheme "
                              f"{scheme.name} has {len(scheme.columns)}")
    values = parse_numbers(frame, scheme.columns, path, -np.inf, np.inf, allow_missing=True)
    boxes: list[Box | None] = [None] * len(frame)
    box_columns = ["box_left", "box_top", "box_width", "box_height"]
    if all(c in frame.columns for c in box_columns):
        numbers = parse_numbers(frame, box_columns, path, -np.inf, np.inf, allow_missing=False)
        boxes = [Box(*map(float, b), 0.0) for b in numbers]
    base = Path(path).parent
    faces = []
    for i, (name, points, box) in enumerate(zip(frame["file"], values, boxes, strict=True)):
        image = image_path(base, name, path, i + 1)
        person = frame["person"].iloc[i] if "person" in frame.columns else None
        faces.append(LabelledFace(image, points.reshape(-1, 2).astype(np.float64), box,
                                  person or None, i + 1))
    return faces, scheme


def load_photos(path: str | Path, scheme: Scheme | None = None) -> Faces:
    """Training faces of a COCO keypoints file (.json), an iBUG .pts folder or a CSV of photos
    (a `file` column): every face framed by the detector (`frame_faces`)."""
    path = Path(path)
    if path.is_dir():
        faces, scheme = read_folder(path, scheme)
    elif path.suffix.lower() == ".json":
        faces, scheme = read_coco(path, scheme)
    else:
        faces, scheme = read_photo_csv(path, scheme)
    return frame_faces(faces, scheme, path)


def is_photo_data(path: str | Path) -> bool:
    """Whether a training path holds whole photos (a folder, a .json COCO file, or a CSV with a
    `file` column and no 96x96 `Image`) rather than Kaggle-style crops."""
    path = Path(path)
    if path.is_dir() or path.suffix.lower() == ".json":
        return True
    if not path.is_file():
        return False
    try:
        header = list(read_csv(path, nrows=1).columns)
    except (UserError, DataError):
        return False
    return "file" in header and "Image" not in header


def load_training(path: str | Path, sources: str | Path | None = None,
                  scheme: Scheme | str | None = None) -> Faces:
    """Training faces of any labelled data: whole photos (a COCO file, a .pts folder, a CSV
    of photo paths) framed by the detector, or Kaggle-style 96x96 crops (`kaggle.
    load_training`); the last few read are kept, as they are now on disk."""
    if not is_photo_data(path):
        return kaggle.load_training(path, sources, scheme)
    scheme = None if scheme is None else load_scheme(scheme)
    return cached_faces(_photos_key(path, scheme), lambda: load_photos(path, scheme))


def _photos_key(path: str | Path, scheme: Scheme | None) -> tuple | None:
    """Photo data as it is now: the file's (or a folder's .pts files') size and time."""
    path = Path(path)
    files = sorted(path.rglob("*.pts")) if path.is_dir() else [path]
    try:
        stats = tuple((str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    except OSError:
        return None
    return ("photos", *stats, scheme.to_json() if scheme else "")
