"""Keypoints on photographs against ground truth: detection rate, normalised mean error, speed.

NME = mean distance between predicted and true points / distance between the true eye centres
(each eye's centre the mean of the eye points its scheme names: iBUG's six, Kaggle's centre).
Truth may be in any scheme (keypoints15.csv, landmarks68.csv); a model is scored on the points it
shares with the truth, or on Kaggle's 15 derived from its own where the truth has only those.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import read_csv
from ..data.coco import read_coco
from ..data.kaggle import scheme_of
from ..errors import DataError, UserError
from ..geometry import Box
from ..schemes import Scheme
from .pipeline import FacePipeline
from .reading import PhotoError, read_photo


@dataclass
class TruthFace:
    file: str
    points: np.ndarray  # (points, 2) in the truth's scheme's order
    interocular: float  # distance between the true eye centres


# columns of a truth file that are not keypoints: the photo, and the face's annotated box
TRUTH_FIELDS = ("file", "face", "box_left", "box_top", "box_width", "box_height")


def load_truth(path: str | Path) -> list[TruthFace]:
    return read_truth(path)[0]


def read_truth(path: str | Path) -> tuple[list[TruthFace], Scheme]:
    """keypoints15.csv or landmarks68.csv: a `file` column and a scheme's keypoint columns (one
    row per face; a face number and box may come with them); or a COCO keypoints file (.json;
    its photos named relative to it or absolute, unlabelled points left out of the scores)."""
    if Path(path).suffix.lower() == ".json":
        return _coco_truth(path)
    frame = read_csv(path)
    if "file" not in frame.columns:
        raise DataError(path, "missing column file; expected file, then keypoint columns "
                              "(such as left_eye_center_x or p0_x)")
    scheme = scheme_of([c for c in frame.columns if c not in TRUTH_FIELDS], path)
    columns = scheme.columns
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(path, f"missing column(s) {', '.join(missing[:4])}; scheme "
                              f"{scheme.name} has {len(columns)}")
    values = frame[columns].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    if np.isnan(values).any():
        row, col = map(int, np.argwhere(np.isnan(values))[0])
        raise DataError(path, "expected a number", row + 1, columns[col])
    points = values.reshape(len(frame), -1, 2)
    eyes = scheme.eye_centres(points)
    interocular = np.linalg.norm(eyes[:, 0] - eyes[:, 1], axis=1)
    return [TruthFace(f, p, float(d)) for f, p, d in zip(frame["file"], points, interocular,
                                                          strict=True)], scheme


def _coco_truth(path: str | Path) -> tuple[list[TruthFace], Scheme]:
    faces, scheme = read_coco(path)
    truths = []
    for face in faces:
        eyes = scheme.eye_centres(face.points)
        distance = float(np.linalg.norm(eyes[0] - eyes[1]))
        if not np.isfinite(distance):
            raise DataError(path, "a face with an eye point unlabelled (the NME needs both eye "
                                  "centres)", face.row)
        truths.append(TruthFace(os.path.abspath(face.image), face.points, distance))
    return truths, scheme


def comparable(model, truth: Scheme, where: str):
    """How to put a model's points beside the truth's: the truth's points (indices) that the
    model gives, in its order, and a function from the model's points to those compared."""
    names = list(model.keypoints)
    if all(n in truth.points for n in names):
        return names, [truth.points.index(n) for n in names], lambda points: points
    if truth.name == "kaggle15" and model.scheme.kaggle15:
        columns = model.columns

        def derived(points: np.ndarray) -> np.ndarray:
            return model.scheme.to_kaggle15(points.reshape(1, -1), columns)[0].reshape(-1, 2)

        return list(truth.points), list(range(len(truth.points))), derived
    raise UserError(f"--truth {where}: holds {truth.name}'s points, the model gives "
                    f"{model.scheme.name}'s ({names[0]}, ...); give truth in the model's scheme")


def match(truths: list[TruthFace], boxes: list[Box]) -> list[int | None]:
    """For each true face, the detection whose box holds its keypoints' centre (nearest first)."""
    return match_centres([np.nanmean(t.points, axis=0) for t in truths], boxes)


def match_centres(centres: list[np.ndarray], boxes: list[Box]) -> list[int | None]:
    """For each face centre in turn, the detection whose box holds it, nearest first, each
    detection matched once."""
    taken: set[int] = set()
    matches: list[int | None] = []
    for centre in centres:
        best, best_d = None, np.inf
        for j, b in enumerate(boxes):
            d = np.linalg.norm(b.centre - centre)
            if b.contains(centre) and j not in taken and d < best_d:
                best, best_d = j, d
        if best is not None:
            taken.add(best)
        matches.append(best)
    return matches


@dataclass
class PhotoScores:
    faces: int
    detected: int
    nme_per_keypoint: dict[str, float]
    nme: float
    ms_per_face: float
    unreadable: list[str]

    @property
    def detection_rate(self) -> float:
        return self.detected / self.faces if self.faces else float("nan")

    def table(self) -> str:
        lines = [f"faces {self.faces}, detected {self.detected} "
                 f"({100 * self.detection_rate:.1f}%), {self.ms_per_face:.1f} ms per face",
                 f"{'keypoint':<28} {'NME %':>7}"]
        lines += [f"{k:<28} {100 * v:>7.2f}" for k, v in self.nme_per_keypoint.items()]
        lines.append(f"{'overall':<28} {100 * self.nme:>7.2f}")
        return "\n".join(lines)


def evaluate_photos(pipeline: FacePipeline, folder: str | Path,
                    truth_path: str | Path) -> PhotoScores:
    truths, scheme = read_truth(truth_path)
    if not Path(folder).is_dir():
        raise UserError(f"{folder}: no such folder (expected the folder of the truth's photos)")
    if Path(truth_path).suffix.lower() == ".json":  # COCO names its photos itself: in FOLDER
        inside = os.path.abspath(folder)
        outside = [t.file for t in truths if os.path.commonpath([inside, t.file]) != inside]
        if outside:
            raise UserError(f"--truth {truth_path}: {len(outside)} of its photos are not in "
                            f"{folder} (such as {outside[0]}); give the folder that holds them")
    names, index, compared = comparable(pipeline.model, scheme, str(truth_path))
    by_file: dict[str, list[TruthFace]] = {}
    for t in truths:
        by_file.setdefault(t.file, []).append(t)
    errors, seconds, detected_faces, unreadable = [], 0.0, 0, []
    for name, faces in by_file.items():
        try:
            rgb = read_photo(Path(folder) / name)
        except PhotoError as e:
            unreadable.append(str(e))
            continue
        start = time.perf_counter()
        found = pipeline.faces_in(rgb)
        seconds += time.perf_counter() - start
        detected_faces += len(found)
        for t, j in zip(faces, match(faces, [f.box for f in found]), strict=True):
            if j is not None:
                dist = np.linalg.norm(compared(found[j].keypoints) - t.points[index], axis=1)
                errors.append(dist / t.interocular)
    if len(unreadable) == len(by_file):
        raise UserError(f"{folder}: none of the {len(by_file)} photo(s) --truth {truth_path} "
                        f"names could be read there ({unreadable[0]})")
    per_point = np.array(errors) if errors else np.full((0, len(names)), np.nan)
    return PhotoScores(
        faces=len(truths), detected=len(errors),
        nme_per_keypoint={k: float(np.nanmean(per_point[:, i])) for i, k in enumerate(names)},
        nme=float(np.nanmean(per_point)) if errors else float("nan"),
        ms_per_face=1000 * seconds / max(detected_faces, 1), unreadable=unreadable)
