"""Keypoints on photographs against ground truth: detection rate, normalised mean error, speed.

NME = mean distance between predicted and true points / distance between the true eye centres.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import check_columns, read_csv
from ..errors import DataError
from ..geometry import Box
from ..keypoints import COLUMNS, KEYPOINTS
from .pipeline import FacePipeline
from .reading import PhotoError, read_photo


@dataclass
class TruthFace:
    file: str
    points: np.ndarray  # (15, 2)

    @property
    def interocular(self) -> float:
        return float(np.linalg.norm(self.points[0] - self.points[1]))


def load_truth(path: str | Path) -> list[TruthFace]:
    """keypoints15.csv: a `file` column and the 30 keypoint columns (one row per face)."""
    frame = read_csv(path)
    missing = [c for c in ["file", *COLUMNS] if c not in frame.columns]
    if missing:
        check_columns(frame, ["file", *COLUMNS], path)
    values = frame[list(COLUMNS)].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    if np.isnan(values).any():
        row, col = map(int, np.argwhere(np.isnan(values))[0])
        raise DataError(path, "expected a number", row + 1, COLUMNS[col])
    return [TruthFace(f, v.reshape(-1, 2)) for f, v in zip(frame["file"], values, strict=True)]


def match(truths: list[TruthFace], boxes: list[Box]) -> list[int | None]:
    """For each true face, the detection whose box holds its keypoints' centre (nearest first)."""
    taken: set[int] = set()
    matches: list[int | None] = []
    for t in truths:
        centre = t.points.mean(axis=0)
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
    truths = load_truth(truth_path)
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
                dist = np.linalg.norm(found[j].keypoints - t.points, axis=1)
                errors.append(dist / t.interocular)
    per_point = np.array(errors) if errors else np.full((0, 15), np.nan)
    return PhotoScores(
        faces=len(truths), detected=len(errors),
        nme_per_keypoint={k: float(per_point[:, i].mean()) for i, k in enumerate(KEYPOINTS)},
        nme=float(per_point.mean()) if errors else float("nan"),
        ms_per_face=1000 * seconds / max(detected_faces, 1), unreadable=unreadable)
