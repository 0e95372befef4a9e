"""Accuracy in pixels: RMSE overall and per keypoint, and tables comparing runs."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import Faces
from ..errors import UserError
from ..keypoints import CENTRE, keypoint_names, scale, unscale
from ..stored.runs import RunFolder
from .predictor import Predictor


@dataclass
class Evaluation:
    """RMSE in pixels of one model on labelled faces; `tta` says whether flips were averaged."""

    rmse: float  # pixels, over every present label
    per_keypoint: dict[str, float]  # pixels, x and y together
    faces: int
    labels: int
    tta: bool = False
    # what `evaluate` reports beside the table (fk.evaluate(..., details=True, train=True))
    title: str = ""  # which faces
    rmse_without_tta: float | None = None  # as history.csv and compare log it
    mean_shape_rmse: float | None = None  # predicting the training faces' mean for everyone
    train_rmse: float | None = None  # on the faces the run trained on

    def table(self) -> str:
        lines = [f"{'keypoint':<28} {'RMSE px':>8}"]
        lines += [f"{k:<28} {v:>8.3f}" for k, v in self.per_keypoint.items()]
        lines.append(f"{'overall':<28} {self.rmse:>8.3f}   ({self.faces} faces, "
                     f"{self.labels} labels, {'with' if self.tta else 'no'} flip TTA)")
        return "\n".join(lines)

    def report(self) -> str:
        """The table and the figures beside it, as `facekeypoints evaluate` prints them."""
        lines = [f"{self.title}:"] if self.title else []
        lines.append(self.table())
        if self.rmse_without_tta is not None:
            lines.append(f"without flip TTA (as history.csv and compare log it): "
                         f"{self.rmse_without_tta:.3f} px")
        if self.mean_shape_rmse is not None:
            lines.append(f"mean-shape baseline on the same faces: {self.mean_shape_rmse:.3f} px")
        if self.train_rmse is not None:
            lines.append(f"training RMSE (no dropout, no augmentation): {self.train_rmse:.3f} px")
        return "\n".join(lines)

    def to_frame(self):
        """RMSE per keypoint and overall, as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame({"rmse_px": {**self.per_keypoint, "overall": self.rmse}})


def evaluate(predictor: Predictor, faces: Faces, tta: bool | None = None) -> Evaluation:
    """Compare predictions with the labels that are present, in pixels. `tta` overrides the
    model's own flip test-time augmentation (None: as the model was trained to predict)."""
    columns = predictor.columns
    pred = np.clip(unscale(predictor.predict_scaled(faces.X, tta)), *predictor.scheme.bounds)
    missing = [c for c in columns if c not in faces.columns]
    if missing and predictor.scheme.kaggle15 and faces.scheme is not None \
            and faces.scheme.name == "kaggle15":  # a 68-point model on Kaggle's 15 labels
        pred, columns = predictor.scheme.to_kaggle15(pred, columns)
        missing = []
    if missing:
        raise UserError(f"the data has no column {missing[0]} that the model predicts")
    truth = faces.y[:, [faces.columns.index(c) for c in columns]]
    result = from_arrays(truth, scale(pred), columns)
    result.tta = predictor.tta if tta is None else tta
    return result


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


def compare_runs(paths: list[str | Path]):
    """One row per run (each specialist of a group on its own): recipe, epochs, best and last
    validation RMSE as logged while training (no flip TTA), median seconds per epoch, minutes."""
    import pandas as pd

    rows = []
    for run in [member for path in paths for member in RunFolder(Path(path)).members]:
        folder = run.path
        recipe = run.load_recipe()
        hist = run.read_history()
        row = {"run": Path(folder).name, "recipe": recipe.name, "epochs": 0}
        if hist:
            best = min(hist, key=lambda r: r["val_loss"])
            row |= {"epochs": int(hist[-1]["epoch"]), "best_val_px": best["val_rmse"],
                    "at_epoch": int(best["epoch"]), "last_val_px": hist[-1]["val_rmse"],
                    "s_per_epoch": statistics.median(r["seconds"] for r in hist),
                    "minutes": hist[-1]["elapsed"] / 60}
        rows.append(row)
    columns = ["run", "recipe", "epochs", "best_val_px", "at_epoch", "last_val_px",
               "s_per_epoch", "minutes"]
    return pd.DataFrame(rows, columns=columns)


def compare_table(frame) -> str:
    """compare_runs' frame as the command line prints it."""
    header = ["run", "recipe", "epochs", "best val px", "at epoch", "last val px", "s/epoch",
              "minutes"]
    rows = [header]
    for r in frame.itertuples(index=False):
        logged = r.epochs > 0
        rows.append([r.run, r.recipe, str(r.epochs)] + ([
            f"{r.best_val_px:.3f}", str(int(r.at_epoch)), f"{r.last_val_px:.3f}",
            f"{r.s_per_epoch:.2f}", f"{r.minutes:.1f}"] if logged else [""] * 5))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    return "\n".join(lines + ["validation RMSE as logged each epoch, without flip test-time "
                               "augmentation; `evaluate RUN` gives both"])
