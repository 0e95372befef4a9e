"""What the uncertainty is calibrated on: a model run as `detect` runs it (BlazeFace, its mirror
pass) over photos with true keypoints, each matched face's mirror spread and true error per
keypoint in its crop's pixels. tools/calibrate_uncertainty.py fits a model's calibration on it;
bench/uncertainty.py scores the calibration on people held out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import geometry
from ..errors import UserError
from ..inference.predictor import Predictor
from .framing import first_transform
from .pipeline import Face, FacePipeline
from .reading import read_photo
from .scores import TruthFace, match, read_truth


class MirrorSpread:
    """A calibration that gives the mirror spread as it is (crop pixels): what is fitted on."""

    def __call__(self, spread: np.ndarray | None, faces: int) -> np.ndarray:
        return np.asarray(spread, np.float64)


@dataclass
class Sample:
    files: list[str]  # the matched faces' photos
    spread: np.ndarray  # (faces, points) crop pixels
    error: np.ndarray  # (faces, points) crop pixels: distance to the true point
    alone: np.ndarray  # (faces, points) crop pixels: the same without the mirror image
    crop_scale: np.ndarray  # (faces,) crop pixels per photo pixel
    interocular: np.ndarray  # (faces,) the true eye distance, photo pixels

    @property
    def nme(self) -> np.ndarray:
        """(faces,) each face's normalised mean error."""
        return (self.error / self.crop_scale[:, None]).mean(axis=1) / self.interocular

    def subset(self, rows: np.ndarray) -> Sample:
        return Sample([self.files[i] for i in np.flatnonzero(rows)], self.spread[rows],
                      self.error[rows], self.alone[rows], self.crop_scale[rows],
                      self.interocular[rows])


def collect(model: Predictor, folder: str | Path, truth_path: str | Path) -> Sample:
    """Every face of the truth that BlazeFace finds, through the default pipeline with the
    mirror pass, and again without it (`fast`, or a model that runs none); the truth must name
    the model's keypoints (keypoints15.csv for Kaggle's 15, landmarks68.csv for iBUG's 68)."""
    pipeline, alone = FacePipeline(model), FacePipeline(model, fast=True)
    pipeline.calibration, pipeline.tta = MirrorSpread(), True
    truths, scheme = read_truth(truth_path)
    missing = [k for k in pipeline.names if k not in scheme.points]
    if missing:
        raise UserError(f"--truth {truth_path}: has no {missing[0]}; give truth in the model's "
                        f"scheme ({pipeline.model.scheme.name})")
    index = [scheme.points.index(k) for k in pipeline.names]
    files, spread, error, error_alone, scales, iod = [], [], [], [], [], []
    for t in truths:
        rgb = read_photo(Path(folder) / t.file)
        face, face_alone = (_matched(p.faces_in(rgb), t) for p in (pipeline, alone))
        if face is None or face_alone is None:
            continue
        # BlazeFace's one pass (its eyes and mouth frame the crop): the crop's scale from them
        scale = geometry.scale_of(first_transform(face.box, pipeline.framing))
        files.append(t.file)
        spread.append(face.uncertainty * scale)
        error.append(np.linalg.norm(face.keypoints - t.points[index], axis=1) * scale)
        error_alone.append(np.linalg.norm(face_alone.keypoints - t.points[index], axis=1)
                           * scale)
        scales.append(scale)
        iod.append(t.interocular)
    if not files:
        raise UserError(f"{folder}: no face of --truth {truth_path} was found")
    return Sample(files, *map(np.array, (spread, error, error_alone, scales, iod)))


def _matched(faces: list[Face], truth: TruthFace) -> Face | None:
    j = match([truth], [f.box for f in faces])[0]
    return None if j is None else faces[j]


def person(file: str) -> str:
    """The person of a youtube photo (Name_Surname_12.jpg, or _12_b.jpg for a second frame)."""
    stem = Path(file).stem.removesuffix("_b")
    return stem.rsplit("_", 1)[0]
