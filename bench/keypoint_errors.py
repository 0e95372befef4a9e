"""Where each model's error sits, keypoint by keypoint, on the Kaggle test people (none of the
models saw them): RMSE and the mean signed error in x and y, pixels of the 96x96 crop.

    python bench/keypoint_errors.py --model runs/bench-mesh/mesh runs/bench-mesh/mesh-tuned-seed0

A mean signed error far from zero is a convention the model has not learned (the mirror axis
was found this way, docs/photos.md); an RMSE with a small mean is spread, not bias. Each model
predicts as it does for `submit` (with its flip TTA). Truth: test_keypoints.csv, every label.
Writes bench/results/keypoint_errors.csv.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import RESULTS, kaggle_test_truth, write_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", required=True)
    parser.add_argument("--out", default=str(RESULTS / "keypoint_errors.csv"))
    args = parser.parse_args()

    from facekeypoints.inference import loading
    from facekeypoints.keypoints import KEYPOINTS

    X, truth = kaggle_test_truth()
    rows = [{"keypoint": name} for name in [*KEYPOINTS, "overall"]]
    for path in args.model:
        label = Path(path).name
        error = loading.load(path).predict(X).reshape(truth.shape) - truth
        per_point = list(np.moveaxis(error, 1, 0)) + [error.reshape(-1, 2)]
        for row, e in zip(rows, per_point, strict=True):
            e = e[~np.isnan(e).any(axis=-1)]
            row[f"{label} rmse_px"] = round(float(np.sqrt((e ** 2).sum(axis=-1).mean() / 2)), 3)
            row[f"{label} mean_dx"] = round(float(e[:, 0].mean()), 3)
            row[f"{label} mean_dy"] = round(float(e[:, 1].mean()), 3)
        print(label, rows[-1], flush=True)
    write_table(rows, args.out)


if __name__ == "__main__":
    main()
