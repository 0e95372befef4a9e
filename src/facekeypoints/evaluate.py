"""Accuracy in pixels: RMSE overall and per keypoint, and tables comparing runs."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import CENTRE, Faces, scale
from .errors import UserError
from .keypoints import keypoint_names
from .predict import Predictor


@dataclass
class Evaluation:
    rmse: float  # pixels, over every present label
    per_keypoint: dict[str, float]  # pixels, x and y together
    faces: int
    labels: int

    def table(self) -> str:
        lines = [f"{'keypoint':<28} {'RMSE px':>8}"]
        lines += [f"{k:<28} {v:>8.3f}" for k, v in self.per_keypoint.items()]
        lines.append(f"{'overall':<28} {self.rmse:>8.3f}   ({self.faces} faces, "
                     f"{self.labels} labels)")
        return "\n".join(lines)


def evaluate(predictor: Predictor, faces: Faces) -> Evaluation:
    """Compare predictions with the labels that are present, in pixels."""
    missing = [c for c in predictor.columns if c not in faces.columns]
    if missing:
        raise UserError(f"the data has no column {missing[0]} that the model predicts")
    truth = faces.y[:, [faces.columns.index(c) for c in predictor.columns]]
    pred = predictor.predict_scaled(faces.X)
    pred = scale(np.clip(pred * CENTRE + CENTRE, 0, 2 * CENTRE))
    return from_arrays(truth, pred, predictor.columns)


def from_arrays(truth: np.ndarray, pred: np.ndarray, columns: list[str]) -> Evaluation:
    err2 = (pred - truth) ** 2  # NaN where the label is missing
    present = ~np.isnan(truth)
    if not present.any():
        raise UserError("the data has no labels for the keypoints this model predicts")
    per = {}
    for name in keypoint_names(columns):
        idx = [columns.index(f"{name}_x"), columns.index(f"{name}_y")]
        values = err2[:, idx][present[:, idx]]
        per[name] = float(np.sqrt(values.mean()) * CENTRE) if values.size else float("nan")
    overall = float(np.sqrt(err2[present].mean()) * CENTRE)
    return Evaluation(overall, per, int(present.any(axis=1).sum()), int(present.sum()))


def mean_shape_rmse(train: Faces, val: Faces) -> float:
    """The baseline every model must beat: predict the training set's mean face for everyone."""
    mean = np.nanmean(train.y, axis=0)
    pred = np.broadcast_to(mean, val.y.shape)
    return from_arrays(val.y, pred, val.columns).rmse


def compare_runs(paths: list[str | Path]) -> str:
    """One line per run: recipe, epochs, best and last validation RMSE, seconds per epoch."""
    from .specialists import group_members
    from .train import RunFolder

    paths = [member for p in paths for member in group_members(p)]
    rows = [["run", "recipe", "epochs", "best val px", "at epoch", "last val px", "s/epoch",
             "minutes"]]
    for p in paths:
        run = RunFolder(Path(p))
        recipe = run.load_recipe()
        hist = run.read_history()
        if not hist:
            rows.append([Path(p).name, recipe.name, "0", "", "", "", "", ""])
            continue
        best = min(hist, key=lambda r: r["val_loss"])
        rows.append([Path(p).name, recipe.name, str(int(hist[-1]["epoch"])),
                     f"{best['val_rmse']:.3f}", str(int(best["epoch"])),
                     f"{hist[-1]['val_rmse']:.3f}",
                     f"{statistics.median(r['seconds'] for r in hist):.2f}",
                     f"{hist[-1]['elapsed'] / 60:.1f}"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    return "\n".join(lines)
