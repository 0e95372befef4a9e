"""Per-keypoint uncertainty: how far, in the photo's pixels, each keypoint may be from its true
place. It reads the disagreement between a face and its mirror image (flip TTA: the model runs
on both, the photo pipeline averages them), which is free where the mirror pass runs, and a
calibration fitted on people held out from the model's training (tools/calibrate_uncertainty.py,
docs/uncertainty.md) turns it into a radius that holds the true point about 68% of the time.

For each face, in the 96x96 crop's pixels, with s_k the distance between keypoint k as the face
gives it and as its mirror image gives it and m the mean of s over the face's keypoints:

    u_k = scale_k * sqrt(floor^2 + s_k^2 + m^2)

then divided by the crop's scale (crop pixels per photo pixel). `floor` is what a face whose two
readings agree is still off by; `scale_k` sets the 68% per keypoint. Without the mirror image
(`fast`, or a model that runs none) u_k = alone_k, a constant in crop pixels: it still grows
as the crop is cut too large for the face, and ranks faces nearly as well (bench/uncertainty.py).
A model folder without the file (a run, a user's model) gives no uncertainty: an uncalibrated
spread would not mean 68%."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..files import atomic_write_text

FILE = "uncertainty.json"
COVERAGE = 0.68  # the share of true errors within one uncertainty
FLOOR = 3.0  # crop pixels; chosen by bench/uncertainty.py (candidates there)


@dataclass(frozen=True)
class Calibration:
    names: tuple[str, ...]  # the model's keypoints, in its order
    scale: np.ndarray  # (points,) the 68% factor of each keypoint
    alone: np.ndarray  # (points,) crop pixels: each keypoint's uncertainty without the mirror
    floor: float = FLOOR
    calibrated_on: str = ""  # the photos and truth it was fitted on, in words

    def __call__(self, spread: np.ndarray | None, faces: int) -> np.ndarray:
        """(faces, points) crop pixels of mirror spread (None: no mirror image) -> (faces,
        points) uncertainty, crop pixels."""
        if spread is None:
            return np.tile(self.alone, (faces, 1))
        return self.scale * base(spread, self.floor)

    @classmethod
    def fit(cls, names: tuple[str, ...], spread: np.ndarray, error: np.ndarray,
            alone: np.ndarray, floor: float = FLOOR, calibrated_on: str = "") -> Calibration:
        """Each keypoint's factor: the COVERAGE quantile of its true error (crop pixels, (N,
        points)) over its base, on faces of people the model never saw; and of the error
        without the mirror image (`alone`)."""
        error = np.asarray(error, np.float64)
        return cls(tuple(names), np.quantile(error / base(spread, floor), COVERAGE, axis=0),
                   np.quantile(alone, COVERAGE, axis=0), floor, calibrated_on)

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps({
            "method": "mirror spread", "coverage": COVERAGE, "floor": self.floor,
            "scale": self._by_name(self.scale), "without_mirror": self._by_name(self.alone),
            "calibrated_on": self.calibrated_on}, indent=1) + "\n")

    def _by_name(self, values: np.ndarray) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in zip(self.names, values, strict=True)}

    @classmethod
    def read(cls, folder: Path) -> Calibration | None:
        """The calibration in a model folder, None where it has none."""
        path = Path(folder) / FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            scale, alone = data["scale"], data["without_mirror"]
            if list(alone) != list(scale):
                raise ValueError
            return cls(tuple(scale), np.array(list(scale.values()), np.float64),
                       np.array(list(alone.values()), np.float64), float(data["floor"]),
                       str(data.get("calibrated_on", "")))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise UserError(f"{path}: not an uncertainty calibration (expected JSON with "
                            "'floor', 'scale' and 'without_mirror' per keypoint); remake it "
                            "with tools/calibrate_uncertainty.py") from None

    def matches(self, names: tuple[str, ...] | list[str]) -> bool:
        return tuple(names) == self.names


def base(spread: np.ndarray, floor: float) -> np.ndarray:
    """sqrt(floor^2 + s_k^2 + m^2), m the face's mean spread: a face whose readings disagree
    anywhere is less sure everywhere (it ranks faces better than s_k alone)."""
    spread = np.asarray(spread, np.float64)
    mean = spread.mean(axis=-1, keepdims=True)
    return np.sqrt(floor ** 2 + spread ** 2 + mean ** 2)
