"""One landmark scheme: its points, mirror pairs, lines, eye points and mean shape, and what
follows from them (flips, eye centres, Kaggle's 15 from a 68-point scheme)."""


from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import UserError
from ..keypoints import IMAGE_SIZE, KEYPOINTS

BUILTIN = ("kaggle15", "ibug68", "mesh468", "mesh478")
KEYS = ("name", "description", "points", "mirror", "lines", "eyes", "mean_shape", "inside",
        "kaggle15")


@dataclass(frozen=True)
class Scheme:
    name: str
    points: tuple[str, ...]
    mirror: tuple[tuple[str, str], ...] = ()  # left/right pairs; others mirror onto themselves
    lines: tuple[tuple[str, ...], ...] = ()  # polylines to draw; a closed one repeats its first
    eyes: tuple[tuple[str, ...], tuple[str, ...]] | None = None  # subject's left eye, right eye
    mean_shape: np.ndarray | None = field(default=None, compare=False)  # (points, 2), 96x96 face
    inside: bool = False  # every point lies inside the face crop (Kaggle's rule)
    kaggle15: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)
    description: str = ""

    @property
    def columns(self) -> list[str]:
        return [f"{p}_{axis}" for p in self.points for axis in ("x", "y")]

    @property
    def bounds(self) -> tuple[float, float]:
        """The range a coordinate may take in a 96x96 face: the crop for Kaggle's points, a
        crop either side for schemes whose points (a jaw line) may leave it."""
        return (0.0, float(IMAGE_SIZE)) if self.inside else (-float(IMAGE_SIZE),
                                                               2.0 * IMAGE_SIZE)

    def partner(self, point: str) -> str:
        for a, b in self.mirror:
            if point == a:
                return b
            if point == b:
                return a
        return point

    def flip_permutation(self, columns: list[str] | tuple[str, ...]) -> np.ndarray:
        """Index array: flipped[:, i] takes its value from original[:, perm[i]]."""
        index = {c: i for i, c in enumerate(columns)}
        perm = []
        for c in columns:
            other = f"{self.partner(c[:-2])}{c[-2:]}"
            if other not in index:
                raise UserError(f"column {c!r} flips onto {other!r}, which is not selected")
            perm.append(index[other])
        return np.asarray(perm, dtype=np.int32)

    def eye_centres(self, points: np.ndarray, names: list[str] | None = None) -> np.ndarray:
        """(..., 2, 2): the subject's left and right eye centres of points (..., P, 2) in this
        scheme's order (or in `names`' order)."""
        if self.eyes is None:
            raise UserError(f"scheme {self.name}: names no eye points (`eyes`), which the "
                            "normalised mean error needs")
        order = {p: i for i, p in enumerate(names or self.points)}
        return np.stack([points[..., [order[p] for p in eye], :].mean(axis=-2)
                         for eye in self.eyes], axis=-2)

    def to_kaggle15(self, y: np.ndarray, columns: list[str]) -> tuple[np.ndarray, list[str]]:
        """Kaggle's 30 columns derived from (N, columns) pixels, for a 68-point model's
        submission (eye centres the mean of the six eye points, the rest one point each)."""
        if self.name == "kaggle15":
            return y, list(columns)
        if not self.kaggle15:
            raise UserError(f"scheme {self.name}: says nothing of how Kaggle's 15 keypoints "
                            "derive from its points (a [kaggle15] table)")
        index = {c: i for i, c in enumerate(columns)}
        out = np.empty((len(y), 2 * len(KEYPOINTS)), np.float32)
        for k, name in enumerate(KEYPOINTS):
            for a, axis in enumerate("xy"):
                idx = [index[f"{p}_{axis}"] for p in self.kaggle15[name]]
                out[:, 2 * k + a] = y[:, idx].mean(axis=1)
        return out, [f"{k}_{axis}" for k in KEYPOINTS for axis in "xy"]

    def with_mean_shape(self, mean_shape: np.ndarray) -> Scheme:
        return replace(self, mean_shape=np.asarray(mean_shape, np.float64).reshape(-1, 2))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "points": list(self.points),
                               "mirror": [list(p) for p in self.mirror],
                               "lines": [list(line) for line in self.lines],
                               "inside": self.inside}
        if self.description:
            out["description"] = self.description
        if self.eyes is not None:
            out["eyes"] = [list(e) for e in self.eyes]
        if self.mean_shape is not None:
            out["mean_shape"] = np.round(self.mean_shape, 3).tolist()
        if self.kaggle15:
            out["kaggle15"] = {k: list(v) for k, v in self.kaggle15.items()}
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())
