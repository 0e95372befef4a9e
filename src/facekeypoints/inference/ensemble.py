"""Several trained models averaged as one: our `fast` net beside the face mesh, say.

The weights are fitted on the people the runs held out (never on a test file), by a grid search
of the validation RMSE; the result is a small folder (`average.json`: members and weights) that
evaluate, submit, detect and the Python API take like any model. Where a member cannot see a
face (the mesh's face score below 0.5) the others predict it alone.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..files import atomic_write_text
from .predictor import Predictor

MANIFEST = "average.json"
GRID = 20  # weight steps of 0.05


class AveragePredictor(Predictor):
    def __init__(self, members: list[Predictor], weights: list[float], name: str):
        columns = members[0].columns
        for member in members[1:]:
            if member.columns != columns:
                raise UserError(f"average: {member.name} predicts other keypoints than "
                                f"{members[0].name}; average models of the same columns")
        # flip TTA as its members use it; `tta=False` turns it off in every member
        super().__init__(None, columns, any(m.tta for m in members), name, members[0].scheme)
        self.members, self.weights = members, np.asarray(weights, np.float64)
        self.scores_faces = any(m.scores_faces for m in members)

    def for_photos(self) -> AveragePredictor:
        members = [m.for_photos() for m in self.members]
        return AveragePredictor(members, list(self.weights), self.name)

    def member_predictions(self, X: np.ndarray,
                           tta: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each member's scaled predictions (M, N, C) and whether it saw each face (M, N)."""
        scored = [member.predict_scored(X, tta) for member in self.members]
        return np.stack([p for p, _ in scored]), np.stack([s for _, s in scored])

    def predict_scored(self, X: np.ndarray,
                       tta: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        preds, seen = self.member_predictions(X, tta)
        return combine(preds, seen, self.weights), seen.any(axis=0)

    def predict_all(self, X: np.ndarray, tta: bool | None = None
                    ) -> tuple[np.ndarray, np.ndarray, None, None]:
        """No mirror spread (the members each flip their own faces), no mesh."""
        return (*self.predict_scored(X, tta), None, None)


def combine(preds: np.ndarray, seen: np.ndarray, weights: np.ndarray) -> np.ndarray:
    w = weights[:, None] * seen  # (M, N)
    w = np.where(w.sum(axis=0) > 0, w, weights[:, None])  # nobody saw it: the plain weights
    w = w / w.sum(axis=0)
    return (preds * w[:, :, None]).sum(axis=0).astype(np.float32)


def fit_weights(preds: np.ndarray, seen: np.ndarray, truth: np.ndarray) -> list[float]:
    """The weights (steps of 1/GRID, summing to 1) with the lowest RMSE on `truth`."""
    best, best_error = None, np.inf
    for steps in itertools.product(range(GRID + 1), repeat=len(preds) - 1):
        if sum(steps) > GRID:
            continue
        weights = np.array([*steps, GRID - sum(steps)], np.float64) / GRID
        error = np.nanmean((combine(preds, seen, weights) - truth) ** 2)
        if error < best_error:
            best, best_error = weights, error
    return [round(float(w), 4) for w in best]


def write(out: str | Path, members: list[str | Path], weights: list[float],
          fitted_on: str) -> Path:
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"--out {out}: folder exists and is not empty; choose another")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / MANIFEST, json.dumps({
        "members": [str(Path(m).resolve()) for m in members], "weights": weights,
        "fitted_on": fitted_on}, indent=1))
    return out


def read(path: Path) -> tuple[list[str], list[float]]:
    """An averaged model's members (paths; a relative one lies inside the folder, as a Ray
    worker unpacks one) and weights, from its folder."""
    manifest = json.loads((path / MANIFEST).read_text())
    members = [str(path / m) for m in manifest["members"]]  # relative: inside the folder
    for member in members:
        if not Path(member).exists():
            raise UserError(f"{path}: member {member} is gone")
    return members, manifest["weights"]
