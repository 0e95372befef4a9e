"""Kaggle submissions: fill IdLookupTable.csv with predictions, and score one against a solution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import data
from ..errors import DataError, UserError
from ..files import atomic_write_text
from ..keypoints import COLUMNS, IMAGE_SIZE
from ..progress import Progress
from .predictor import Predictor

PREDICT_CHUNK = 512  # faces per step of submit's progress


def predict_lookup(predictor: Predictor, test_path: str | Path, lookup_path: str | Path,
                   progress: str | bool | None = "auto") -> pd.DataFrame:
    """RowId, Location for every row of the lookup table, in its order."""
    ids, X = data.load_test(test_path)
    lookup = data.load_lookup(lookup_path, known_ids=ids)
    # a model of another scheme (iBUG's 68) submits Kaggle's 15 derived from its points
    derive = predictor.scheme.name != "kaggle15" and bool(predictor.scheme.kaggle15)
    columns = list(COLUMNS) if derive else predictor.columns
    missing = sorted(set(lookup["FeatureName"]) - set(columns))
    if missing:
        raise UserError(f"{lookup_path}: asks for {missing[0]}, which the model does not predict")
    parts = []
    with Progress(len(X), "submit", "face", mode=progress, every=5.0) as bar:
        for i in range(0, len(X), PREDICT_CHUNK):
            pred = predictor.predict(X[i : i + PREDICT_CHUNK])
            if derive:  # within the image, as Kaggle's keypoints are
                pred = np.clip(predictor.scheme.to_kaggle15(pred, predictor.columns)[0], 0.0,
                               float(IMAGE_SIZE))
            parts.append(pred)
            bar.update(len(parts[-1]))
    return lookup_locations(lookup, ids, columns, np.concatenate(parts))


def lookup_locations(lookup: pd.DataFrame, ids: np.ndarray, columns: list[str],
                     pred: np.ndarray) -> pd.DataFrame:
    """RowId, Location for each lookup row, from per-image predictions (pixels, rows in `ids`
    order, columns named by `columns`)."""
    row_of_image = pd.Series(np.arange(len(ids)), index=ids)
    col_of_feature = {c: j for j, c in enumerate(columns)}
    rows = row_of_image.loc[lookup["ImageId"]].to_numpy()
    cols = lookup["FeatureName"].map(col_of_feature).to_numpy()
    return pd.DataFrame({"RowId": lookup["RowId"], "Location": pred[rows, cols]})


def write(submission: pd.DataFrame, out: str | Path) -> None:
    """RowId,Location with a header and LF line ends, as Kaggle's SampleSubmission.csv."""
    lines = ["RowId,Location"]
    lines += [f"{r},{loc:.4f}" for r, loc in zip(submission["RowId"], submission["Location"],
                                                   strict=True)]
    atomic_write_text(out, "\n".join(lines) + "\n")


def read_locations(path: str | Path) -> pd.Series:
    """Location by RowId from a submission or solution file, every value checked."""
    frame = data.read_csv(path)
    data.check_columns(frame, ["RowId", "Location"], path)
    values = data.parse_numbers(frame, ["RowId", "Location"], path, -np.inf, np.inf,
                                allow_missing=False)
    row_ids = values[:, 0]
    if (row_ids != np.round(row_ids)).any() or (row_ids < 1).any():
        i = int(np.argmax((row_ids != np.round(row_ids)) | (row_ids < 1)))
        raise DataError(path, f"RowId {frame['RowId'].iloc[i]!r} is not a positive whole number",
                        i + 1, "RowId")
    series = pd.Series(values[:, 1].astype(np.float64), index=row_ids.astype(np.int64))
    dup = series.index.duplicated()
    if dup.any():
        i = int(np.argmax(dup))
        raise DataError(path, f"duplicate RowId {series.index[i]}", i + 1, "RowId")
    return series


def score(submission_path: str | Path, solution_path: str | Path) -> tuple[float, int]:
    """RMSE in pixels of a submission against a solution file, over the solution's rows."""
    sub, sol = read_locations(submission_path), read_locations(solution_path)
    missing = sol.index.difference(sub.index)
    if len(missing):
        raise DataError(submission_path, f"has no row for RowId {missing[0]} "
                        f"({len(missing)} of the solution's {len(sol)} rows missing)")
    extra = sub.index.difference(sol.index)
    if len(extra):
        raise DataError(submission_path, f"RowId {extra[0]} is not in the solution "
                        f"({len(extra)} unknown rows)")
    err = sub.loc[sol.index].to_numpy() - sol.to_numpy()
    return float(np.sqrt(np.mean(err**2))), len(sol)
